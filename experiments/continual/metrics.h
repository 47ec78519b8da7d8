// Continual-learning metrics over the accuracy matrix R.
//
// R is lower-triangular and stored as ragged rows: row i holds the accuracy
// on tasks 0..i measured right after training task i (R[i][j], j <= i). In
// task-incremental learning a task's head does not exist before the task is
// trained, so the entries above the diagonal are never measured.
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

// Mean and sample standard deviation (n-1 in the denominator), the spread of
// a setting over seeds. One value has no spread to measure: sample_std is
// then empty (null in JSON, a dash in tables), never a made-up 0.
struct MeanStd {
  double mean = 0;
  std::optional<double> sample_std;
};
MeanStd mean_std(const std::vector<double>& values);

}  // namespace continual
