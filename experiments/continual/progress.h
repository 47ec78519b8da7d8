// Progress of one training epoch. On a terminal: a bar redrawn in place with
// images/s, loss, accuracy and time left. Otherwise (a log file, a pipe, a
// batch system): a plain line at most every `interval_s` seconds, so logs stay
// short but show that the run is alive.
#pragma once

#include <chrono>
#include <cstdint>
#include <ostream>
#include <string>

namespace continual {

// True when stderr, where progress goes, is a terminal.
bool progress_on_terminal();

class Progress {
 public:
  Progress(std::string label, int64_t total_images, std::ostream& out, bool terminal,
           double interval_s = 10.0);
  // After each batch: images seen so far this epoch, running mean loss and accuracy.
  void update(int64_t images_done, double loss, double accuracy);
  // Ends the epoch's display with one final line: label, the running numbers and `tail`.
  void finish(const std::string& tail);

 private:
  std::string status(int64_t images_done, double loss, double accuracy) const;
  double elapsed() const;

  std::string label_;
  int64_t total_;
  std::ostream& out_;
  bool terminal_;
  double interval_s_;
  std::chrono::steady_clock::time_point start_;
  double last_print_ = -1e9;
  int64_t images_ = 0;
  double loss_ = 0, accuracy_ = 0;
};

}  // namespace continual
