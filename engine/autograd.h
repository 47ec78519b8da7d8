// Define-by-run reverse-mode autograd, as in micrograd.
//
// An op whose inputs require grad (and grad mode is on) gives its output a Node
// holding the inputs and a backward function. Tensor::backward() on a scalar
// orders the graph topologically (iteratively: deep graphs must not overflow
// the stack), seeds d(out)/d(out) = 1 and calls each node's backward in
// reverse order. A backward function reads the gradient of its output and
// accumulates into its inputs' gradients through grad_buffer(); it skips inputs
// that do not require grad, so frozen weights cost no weight-gradient work.
// After backward the nodes are released and intermediate gradients dropped;
// only leaves (parameters, inputs marked requires_grad) keep .grad.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "engine/tensor.h"

namespace engine {

struct Node {
  std::string op;              // for error messages and debugging
  std::vector<Tensor> inputs;  // in the order the op received them
  // Called with the gradient of the op's output (same shape as the output).
  std::function<void(const Tensor& dy)> backward;
};

// True unless a NoGradGuard is alive on this thread.
bool grad_enabled();

// Disables recording in its scope (evaluation, optimiser updates).
class NoGradGuard {
 public:
  NoGradGuard();
  ~NoGradGuard();
  NoGradGuard(const NoGradGuard&) = delete;
  NoGradGuard& operator=(const NoGradGuard&) = delete;

 private:
  bool previous_;
};

// True when an op with these inputs must be recorded.
bool needs_grad(std::initializer_list<const Tensor*> inputs);

// Makes `output` the result of a recorded op: sets requires_grad and grad_fn.
// Call only when needs_grad(...) is true.
void record(Tensor& output, std::string op, std::vector<Tensor> inputs,
            std::function<void(const Tensor& dy)> backward);

// The gradient buffer of t, allocated as zeros (same shape, dtype, device) on
// first use. Backward functions accumulate into it.
Tensor grad_buffer(const Tensor& t);

}  // namespace engine
