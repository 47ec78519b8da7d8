// distillation: the soft-target cross-entropy of knowledge distillation
// (Hinton et al. 2015) as Learning without Forgetting uses it (Li & Hoiem
// 2016), forward and backward. The teacher's logits are constants.
//
// The logits are a few classes per row, so both directions run on the host
// (one small copy each way) rather than as a kernel pair per backend.
#include <cmath>
#include <string>
#include <vector>

#include "engine/autograd.h"
#include "engine/backend.h"
#include "engine/ops.h"

namespace engine {

namespace {

// Row-wise softmax of z / T over the allowed columns (others 0), in double.
std::vector<double> tempered_softmax(const std::vector<double>& z, int64_t n, int64_t k,
                                     std::span<const uint8_t> mask, double temperature) {
  std::vector<double> p(z.size(), 0.0);
  for (int64_t row = 0; row < n; ++row) {
    const double* zr = z.data() + row * k;
    double* pr = p.data() + row * k;
    double top = -INFINITY;
    for (int64_t j = 0; j < k; ++j)
      if (mask[j]) top = std::max(top, zr[j] / temperature);
    double total = 0;
    for (int64_t j = 0; j < k; ++j)
      if (mask[j]) total += pr[j] = std::exp(zr[j] / temperature - top);
    for (int64_t j = 0; j < k; ++j) pr[j] /= total;
  }
  return p;
}

}  // namespace

// logits (N,K), teacher_logits (N,K), class_mask (K) -> loss {}:
// mean over N of -sum_{k allowed} softmax(teacher/T)_k log softmax(logits/T)_k
Tensor distillation(const Tensor& logits, const Tensor& teacher_logits, std::span<const uint8_t> class_mask,
                    double temperature) {
  check_ndim("distillation", "logits", logits, 2);
  check_same_shape("distillation", logits, teacher_logits);
  check_same_dtype_device("distillation", logits, teacher_logits);
  const int64_t n = logits.dim(0), k = logits.dim(1);
  if (n == 0) shape_error("distillation", "empty batch, logits " + to_string(logits.shape()));
  if (static_cast<int64_t>(class_mask.size()) != k)
    shape_error("distillation", "class_mask has " + std::to_string(class_mask.size()) + " entries but logits " +
                                    to_string(logits.shape()) + " have " + std::to_string(k) + " classes");
  bool any = false;
  for (uint8_t allowed : class_mask) {
    if (allowed > 1) shape_error("distillation", "class_mask entries must be 0 or 1");
    any = any || allowed;
  }
  if (!any) shape_error("distillation", "no class allowed for logits " + to_string(logits.shape()));
  if (!(temperature > 0)) shape_error("distillation", "temperature " + std::to_string(temperature) + " must be positive");

  const std::vector<uint8_t> mask(class_mask.begin(), class_mask.end());
  // Both softmaxes are the backward's cache.
  const std::vector<double> target = tempered_softmax(teacher_logits.to_double_vector(), n, k, mask, temperature);
  const std::vector<double> student = tempered_softmax(logits.to_double_vector(), n, k, mask, temperature);
  double loss = 0;
  for (int64_t i = 0; i < n * k; ++i)
    if (mask[static_cast<size_t>(i % k)] && target[i] > 0) loss -= target[i] * std::log(student[i]);
  loss /= static_cast<double>(n);

  Tensor y = Tensor::full({}, loss, logits.dtype(), logits.device());
  if (needs_grad({&logits})) {
    record(y, "distillation", {logits}, {}, [logits, target, student, n, k, temperature](const Tensor& dy) {
      // d(loss)/dlogits = (softmax(logits/T) - softmax(teacher/T)) / (T N), times dy;
      // masked columns are 0 in both, so they get no gradient.
      const double scale = dy.item() / (temperature * static_cast<double>(n));
      std::vector<double> dlogits(target.size());
      for (size_t i = 0; i < dlogits.size(); ++i) dlogits[i] = (student[i] - target[i]) * scale;
      const Tensor d = Tensor::from_vector({n, k}, std::span<const double>(dlogits)).to(logits.dtype()).to(logits.device());
      dispatch_dtype(logits.dtype(), [&]<class T>() {
        backend(logits.device()).kernels<T>().axpy(n * k, T(1), d.data<T>(), grad_buffer(logits).data<T>());
      });
    });
  }
  return y;
}

}  // namespace engine
