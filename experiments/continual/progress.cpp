#include "experiments/continual/progress.h"

#include <unistd.h>

#include <algorithm>
#include <cstdio>

namespace continual {

bool progress_on_terminal() { return ::isatty(STDERR_FILENO) == 1; }

Progress::Progress(std::string label, int64_t total_images, std::ostream& out, bool terminal, double interval_s)
    : label_(std::move(label)),
      total_(total_images),
      out_(out),
      terminal_(terminal),
      interval_s_(terminal ? 0.2 : interval_s),
      start_(std::chrono::steady_clock::now()) {}

double Progress::elapsed() const {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
}

std::string Progress::status(int64_t images_done, double loss, double accuracy) const {
  const double seconds = elapsed();
  const double rate = seconds > 0 ? static_cast<double>(images_done) / seconds : 0;
  const double left = rate > 0 ? static_cast<double>(total_ - images_done) / rate : 0;
  char buffer[160];
  std::snprintf(buffer, sizeof buffer, "%lld/%lld  %.0f img/s  loss %.4f  acc %.4f  %.0fs left",
                static_cast<long long>(images_done), static_cast<long long>(total_), rate, loss, accuracy, left);
  return buffer;
}

void Progress::update(int64_t images_done, double loss, double accuracy) {
  images_ = images_done;
  loss_ = loss;
  accuracy_ = accuracy;
  const double now = elapsed();
  if (now - last_print_ < interval_s_) return;
  last_print_ = now;
  if (terminal_) {
    constexpr int kWidth = 24;
    const double done = total_ > 0 ? std::clamp(static_cast<double>(images_done) / total_, 0.0, 1.0) : 1.0;
    const int filled = static_cast<int>(done * kWidth);
    // \r returns to the start of the line; \x1b[K clears what a longer line left.
    out_ << '\r' << label_ << " [" << std::string(filled, '#') << std::string(kWidth - filled, '.') << "] "
         << status(images_done, loss, accuracy) << "\x1b[K" << std::flush;
  } else {
    out_ << label_ << "  " << status(images_done, loss, accuracy) << '\n' << std::flush;
  }
}

void Progress::finish(const std::string& tail) {
  char buffer[120];
  const double seconds = elapsed();
  std::snprintf(buffer, sizeof buffer, "  %.1fs  %.0f img/s  loss %.4f  acc %.4f", seconds,
                seconds > 0 ? static_cast<double>(images_) / seconds : 0.0, loss_, accuracy_);
  if (terminal_) out_ << '\r';
  out_ << label_ << buffer << "  " << tail << (terminal_ ? "\x1b[K\n" : "\n") << std::flush;
}

}  // namespace continual
