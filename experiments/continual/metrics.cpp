#include "experiments/continual/metrics.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>

namespace continual {

void check_accuracy_matrix(const AccuracyMatrix& r) {
  if (r.empty()) throw std::invalid_argument("accuracy matrix: no rows");
  for (size_t i = 0; i < r.size(); ++i)
    if (r[i].size() != i + 1)
      throw std::invalid_argument("accuracy matrix: row " + std::to_string(i) + " has " +
                                  std::to_string(r[i].size()) + " entries, expected " +
                                  std::to_string(i + 1) + " (tasks 0.." + std::to_string(i) + ")");
}

double average_accuracy(const AccuracyMatrix& r) {
  check_accuracy_matrix(r);
  double total = 0;
  for (double a : r.back()) total += a;
  return total / static_cast<double>(r.back().size());
}

double backward_transfer(const AccuracyMatrix& r) {
  check_accuracy_matrix(r);
  const size_t last = r.size() - 1;
  if (last == 0) return 0;
  double total = 0;
  for (size_t j = 0; j < last; ++j) total += r[last][j] - r[j][j];
  return total / static_cast<double>(last);
}

double forgetting(const AccuracyMatrix& r) {
  check_accuracy_matrix(r);
  const size_t last = r.size() - 1;
  if (last == 0) return 0;
  double total = 0;
  for (size_t j = 0; j < last; ++j) {
    double best = r[j][j];
    for (size_t l = j + 1; l < last; ++l) best = std::max(best, r[l][j]);
    total += best - r[last][j];
  }
  return total / static_cast<double>(last);
}

std::optional<double> forward_transfer(const std::vector<double>& before_training,
                                       const std::vector<double>& untrained) {
  if (before_training.empty() || untrained.empty()) return std::nullopt;
  if (before_training.size() != untrained.size())
    throw std::invalid_argument("forward transfer: " + std::to_string(before_training.size()) +
                                " accuracies before training, " + std::to_string(untrained.size()) +
                                " of the untrained network; expected one per task in both");
  if (before_training.size() < 2) return std::nullopt;
  double total = 0;
  for (size_t t = 1; t < before_training.size(); ++t) total += before_training[t] - untrained[t];
  return total / static_cast<double>(before_training.size() - 1);
}

std::vector<int64_t> predict_by_most_confident_path(const std::vector<LogitMatrix>& paths,
                                                    const std::vector<std::vector<uint8_t>>& masks) {
  if (paths.empty() || paths.size() != masks.size())
    throw std::invalid_argument("task inference: " + std::to_string(paths.size()) + " paths and " +
                                std::to_string(masks.size()) + " class masks; expected one of each per task");
  const int64_t n = paths.front().rows, k = paths.front().cols;
  for (size_t t = 0; t < paths.size(); ++t) {
    const LogitMatrix& p = paths[t];
    if (p.rows != n || p.cols != k || p.values.size() != static_cast<size_t>(n * k))
      throw std::invalid_argument("task inference: path of task " + std::to_string(t) + " has logits (" +
                                  std::to_string(p.rows) + "," + std::to_string(p.cols) + ") with " +
                                  std::to_string(p.values.size()) + " values, expected (" + std::to_string(n) + "," +
                                  std::to_string(k) + ")");
    if (masks[t].size() != static_cast<size_t>(k) || std::find(masks[t].begin(), masks[t].end(), 1) == masks[t].end())
      throw std::invalid_argument("task inference: the class mask of task " + std::to_string(t) + " has " +
                                  std::to_string(masks[t].size()) + " entries, expected " + std::to_string(k) +
                                  " with at least one class");
  }
  std::vector<int64_t> predicted(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) {
    double best_confidence = -1;
    for (size_t t = 0; t < paths.size(); ++t) {
      const double* z = paths[t].values.data() + i * k;
      const std::vector<uint8_t>& mask = masks[t];
      int64_t top = -1;
      for (int64_t j = 0; j < k; ++j)
        if (mask[j] && (top < 0 || z[j] > z[top])) top = j;
      // The softmax over the task's classes at its top class: 1 / sum exp(z_j - z_top).
      double denominator = 0;
      for (int64_t j = 0; j < k; ++j)
        if (mask[j]) denominator += std::exp(z[j] - z[top]);
      const double confidence = 1 / denominator;
      if (confidence > best_confidence) {
        best_confidence = confidence;
        predicted[static_cast<size_t>(i)] = top;
      }
    }
  }
  return predicted;
}

MeanStd mean_std(const std::vector<double>& values) {
  if (values.empty()) throw std::invalid_argument("mean_std: no values");
  const double n = static_cast<double>(values.size());
  double sum = 0;
  for (double v : values) sum += v;
  const double mean = sum / n;
  if (values.size() == 1) return {mean, std::nullopt};
  double squares = 0;
  for (double v : values) squares += (v - mean) * (v - mean);
  return {mean, std::sqrt(squares / (n - 1))};
}

}  // namespace continual
