// cross_entropy (fused log-softmax + NLL, mean over the batch) with an optional
// class mask, forward and backward; masked_argmax for predictions.
#include <string>
#include <vector>

#include "engine/autograd.h"
#include "engine/backend.h"
#include "engine/ops.h"

namespace engine {

namespace {

void check_class_mask(const std::string& op, const Tensor& logits,
                      std::span<const uint8_t> class_mask) {
  if (class_mask.empty()) return;
  if (static_cast<int64_t>(class_mask.size()) != logits.dim(1))
    shape_error(op, "class_mask has " + std::to_string(class_mask.size()) +
                        " entries but logits " + to_string(logits.shape()) + " have " +
                        std::to_string(logits.dim(1)) + " classes");
  for (uint8_t allowed : class_mask)
    if (allowed > 1) shape_error(op, "class_mask entries must be 0 or 1");
}

}  // namespace

// logits (N,K), labels (N), class_mask (K) or empty -> loss {} (mean over N)
Tensor cross_entropy(const Tensor& logits, std::span<const int64_t> labels,
                     std::span<const uint8_t> class_mask) {
  check_ndim("cross_entropy", "logits", logits, 2);
  const int64_t n = logits.dim(0), k = logits.dim(1);
  if (n == 0) shape_error("cross_entropy", "empty batch, logits " + to_string(logits.shape()));
  if (static_cast<int64_t>(labels.size()) != n)
    shape_error("cross_entropy", std::to_string(labels.size()) + " labels for logits " +
                                     to_string(logits.shape()));
  check_class_mask("cross_entropy", logits, class_mask);
  // log_probs is the backward's cache: softmax = exp(log_probs). The loss is
  // written on the logits' device, so a GPU step never waits for it here.
  Tensor log_probs = Tensor::empty({n, k}, logits.dtype(), logits.device());
  Tensor y = Tensor::empty({}, logits.dtype(), logits.device());
  dispatch_dtype(logits.dtype(), [&]<class T>() {
    backend(logits.device()).kernels<T>().cross_entropy_forward(
        n, k, logits.data<T>(), labels.data(), class_mask.empty() ? nullptr : class_mask.data(),
        log_probs.data<T>(), y.data<T>());
  });
  if (needs_grad({&logits})) {
    record(y, "cross_entropy", {logits}, {},
           [logits, log_probs, labels = std::vector<int64_t>(labels.begin(), labels.end()), n,
            k](const Tensor& dy) {
      // d(mean loss)/dlogits = (softmax - onehot) / N, times the incoming dy.
      dispatch_dtype(dy.dtype(), [&]<class T>() {
        backend(dy.device()).kernels<T>().cross_entropy_backward(
            n, k, log_probs.data<T>(), labels.data(), dy.data<T>(), grad_buffer(logits).data<T>());
      });
    });
  }
  return y;
}

// logits (N,K), class_mask (K) or empty -> N predictions (first maximum wins)
std::vector<int64_t> masked_argmax(const Tensor& logits, std::span<const uint8_t> class_mask) {
  check_ndim("masked_argmax", "logits", logits, 2);
  check_class_mask("masked_argmax", logits, class_mask);
  const int64_t n = logits.dim(0), k = logits.dim(1);
  int64_t first_allowed = 0;
  while (first_allowed < k && !class_mask.empty() && !class_mask[first_allowed]) ++first_allowed;
  if (first_allowed == k)
    shape_error("masked_argmax", "no class allowed for logits " + to_string(logits.shape()));
  const std::vector<double> values = logits.to_double_vector();
  std::vector<int64_t> predictions(static_cast<size_t>(n));
  for (int64_t row = 0; row < n; ++row) {
    const double* z = values.data() + row * k;
    int64_t best = first_allowed;
    for (int64_t j = first_allowed + 1; j < k; ++j)
      if ((class_mask.empty() || class_mask[j]) && z[j] > z[best]) best = j;
    predictions[static_cast<size_t>(row)] = best;
  }
  return predictions;
}

}  // namespace engine
