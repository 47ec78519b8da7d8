#include "experiments/continual/epoch_log.h"

#include <cstdio>
#include <sstream>
#include <stdexcept>

#include "engine/io.h"

namespace continual {

std::filesystem::path epoch_log_file(const std::filesystem::path& out_dir, const std::string& cell) {
  return out_dir / "epochs" / (cell + ".csv");
}

const char* EpochLog::header() { return "task,epoch,train_loss,train_accuracy,val_accuracy,learning_rate,seconds\n"; }

EpochLog::EpochLog(std::filesystem::path path, int64_t done_task, int64_t done_epoch) : path_(std::move(path)) {
  std::string kept = header();
  if (std::filesystem::exists(path_)) {
    const std::vector<char> bytes = engine::read_file(path_);
    std::istringstream lines(std::string(bytes.begin(), bytes.end()));
    std::string line;
    std::getline(lines, line);  // the header
    while (std::getline(lines, line)) {
      long long task = 0, epoch = 0;
      if (std::sscanf(line.c_str(), "%lld,%lld,", &task, &epoch) != 2) continue;  // a torn last line
      if (task < done_task || (task == done_task && epoch <= done_epoch)) kept += line + "\n";
    }
  }
  std::filesystem::create_directories(path_.parent_path());
  engine::write_file_atomic(path_, kept);
  file_.open(path_, std::ios::app);
  if (!file_) throw std::runtime_error("cannot append to " + path_.string());
}

void EpochLog::append(const EpochRecord& r) {
  char row[256];
  std::snprintf(row, sizeof row, "%lld,%lld,%.6f,%.6f,%.6f,%.6g,%.3f\n", static_cast<long long>(r.task),
                static_cast<long long>(r.epoch), r.train_loss, r.train_accuracy, r.val_accuracy, r.learning_rate,
                r.seconds);
  file_ << row << std::flush;
  if (!file_) throw std::runtime_error("cannot append to " + path_.string());
}

}  // namespace continual
