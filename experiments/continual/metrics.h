// Continual-learning metrics over the accuracy matrix R, and the
// class-incremental prediction over logit matrices.
//
// R is lower-triangular and stored as ragged rows: row i holds the accuracy
// on tasks 0..i measured right after training task i (R[i][j], j <= i). In
// task-incremental learning a task's head does not exist before the task is
// begun, so the entries above the diagonal are never measured; forward
// transfer uses its own measurement instead (the task's accuracy after it is
// begun, before its first training step).
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

namespace continual {

using AccuracyMatrix = std::vector<std::vector<double>>;

// Throws std::invalid_argument unless R is non-empty and row i has i+1 entries.
void check_accuracy_matrix(const AccuracyMatrix& r);

// ACC: mean of the last row, the average accuracy over all tasks at the end.
double average_accuracy(const AccuracyMatrix& r);

// BWT (Lopez-Paz & Ranzato 2017): mean over j < T-1 of R[T-1][j] - R[j][j].
// Negative means forgetting. 0 for a single task (nothing came after it).
double backward_transfer(const AccuracyMatrix& r);

// Forgetting (Chaudhry et al. 2018): mean over j < T-1 of
// max over l in [j, T-2] of R[l][j], minus R[T-1][j]. 0 for a single task.
double forgetting(const AccuracyMatrix& r);

// Forward transfer (Lopez-Paz & Ranzato 2017): mean over tasks t >= 1 of
// before_training[t] - untrained[t], where before_training[t] is task t's
// accuracy right after it was begun, before any training step on it, and
// untrained[t] the accuracy on task t of the same network as built (same
// seed), begun through task t and never trained. Empty (n/a: null in JSON, a
// dash in tables, never 0) when there is no later task, or when either list
// is missing (cells written before it was measured). Throws
// std::invalid_argument when the lists have different lengths.
std::optional<double> forward_transfer(const std::vector<double>& before_training,
                                       const std::vector<double>& untrained);

// The logits of N images over K classes, row-major: row i is image i.
struct LogitMatrix {
  int64_t rows = 0, cols = 0;
  std::vector<double> values;  // rows * cols
};

// Class-incremental prediction by task inference: paths[t] (N,K) holds the
// logits through task t's path (its adapters, branch or column) and masks[t]
// (K) marks task t's classes. Per image, the task whose path is most
// confident, the highest softmax probability over its own classes, wins (the
// lower task on a tie), and the prediction is that path's argmax over those
// classes (the lower class on a tie). Returns N class positions. Throws
// std::invalid_argument unless there is one mask per path, every path is N x K,
// and every mask has K entries with at least one class.
std::vector<int64_t> predict_by_most_confident_path(const std::vector<LogitMatrix>& paths,
                                                    const std::vector<std::vector<uint8_t>>& masks);

// Mean and sample standard deviation (n-1 in the denominator), the spread of
// a setting over seeds. One value has no spread to measure: sample_std is
// then empty (null in JSON, a dash in tables), never a made-up 0.
struct MeanStd {
  double mean = 0;
  std::optional<double> sample_std;
};
MeanStd mean_std(const std::vector<double>& values);

}  // namespace continual
