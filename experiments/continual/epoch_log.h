// The per-epoch record of one cell, streamed to OUT/epochs/<cell>.csv while it
// trains, so that a running experiment can be followed with any tool:
//
//   task,epoch,train_loss,train_accuracy,val_accuracy,learning_rate,seconds
//
// task and epoch count from 1; train_loss and train_accuracy are the means
// over the epoch's batches; learning_rate is the one the epoch trained with;
// seconds the epoch's wall time (training and validation). Each row is
// flushed as soon as its epoch ends. Opening the log for a resumed cell keeps
// only the rows up to the checkpoint's epoch, so a resumed run continues the
// file without repeating an epoch.
#pragma once

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>

namespace continual {

struct EpochRecord {
  int64_t task = 1;   // from 1
  int64_t epoch = 1;  // from 1, within the task
  double train_loss = 0;
  double train_accuracy = 0;
  double val_accuracy = 0;
  double learning_rate = 0;
  double seconds = 0;
};

std::filesystem::path epoch_log_file(const std::filesystem::path& out_dir, const std::string& cell);

class EpochLog {
 public:
  // Starts the file afresh (header only) when `done_task` is 1 and
  // `done_epoch` 0; otherwise keeps the rows of tasks before `done_task` and
  // of `done_task`'s first `done_epoch` epochs, dropping any later ones.
  EpochLog(std::filesystem::path path, int64_t done_task, int64_t done_epoch);
  // Appends one row and flushes it.
  void append(const EpochRecord& record);
  const std::filesystem::path& path() const { return path_; }

  static const char* header();

 private:
  std::filesystem::path path_;
  std::ofstream file_;
};

}  // namespace continual
