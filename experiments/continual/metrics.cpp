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
