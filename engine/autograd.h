// Define-by-run reverse-mode autograd, as in micrograd.
//
// An op whose inputs require grad (and grad mode is on) gives its output a Node
// holding the inputs that require grad and a backward function.
// Tensor::backward() on a scalar orders the graph topologically (iteratively:
// deep graphs must not overflow the stack), adds d(out)/d(out) = 1 to the
// scalar's gradient and calls each node's backward in reverse order. A backward
// function reads the gradient of its output and accumulates into its inputs'
// gradients through grad_buffer(); it skips inputs that do not require grad, so
// frozen weights cost no weight-gradient work.
//
// Semantics, as PyTorch's without retain_graph:
// - Each node is released right after its backward runs (its closure, saved
//   tensors and the output's gradient), so activations are freed as backward
//   walks down the graph; only leaves (parameters, inputs marked requires_grad)
//   keep .grad, and gradients accumulate across backward calls until zero_grad.
// - A second backward through a released node is an error ("trying to backward
//   through the graph a second time"): run the forward again instead.
// - A tensor an op saved for its backward must not be written in place (copy_,
//   an optimiser step) before that backward: every in-place write bumps its
//   storage's version, and backward refuses, naming the op, before touching any
//   gradient.
// - Dropping a graph without backward frees it iteratively (~Node), so a chain
//   of millions of ops cannot overflow the stack.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "engine/tensor.h"

namespace engine {

// A tensor whose values a backward function reads, with the version of its
// storage when the forward saved it.
struct SavedVersion {
  std::shared_ptr<const Storage> storage;
  uint64_t version = 0;
  Shape shape;  // for the error message
};

struct Node {
  std::string op;              // for error messages and debugging
  std::vector<Tensor> inputs;  // those that require grad, in the op's order
  std::vector<SavedVersion> saved;
  // Called with the gradient of the op's output (same shape as the output).
  std::function<void(const Tensor& dy)> backward;

  Node() = default;
  Node(const Node&) = delete;
  Node& operator=(const Node&) = delete;
  ~Node();
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
// `inputs` are the op's tensor arguments (undefined ones and those that do not
// require grad are left out of the graph); `saved` lists the tensors whose
// values `backward` reads, checked against in-place writes when it runs.
// Call only when needs_grad(...) is true.
void record(Tensor& output, std::string op, std::vector<Tensor> inputs,
            const std::vector<Tensor>& saved, std::function<void(const Tensor& dy)> backward);

// t when it requires grad, else an undefined Tensor: what a backward function
// captures for an input it only accumulates into, so that it holds nothing
// for inputs that get no gradient.
Tensor grad_target(const Tensor& t);

// The gradient buffer of t, allocated as zeros (same shape, dtype, device) on
// first use. Backward functions accumulate into it.
Tensor grad_buffer(const Tensor& t);

// t's gradient += alpha * g, g having t's number of elements (read in t's
// shape): the backward of an op whose input gradient is its output gradient,
// maybe scaled (add, sub, reshape, mul_scalar). Where t has no gradient yet and
// g is the gradient the walk handed to this node, held by nobody else, g's
// bytes become t's gradient (scaled in place when alpha != 1) instead of
// being copied into a zeroed buffer: no pass over memory, or one for a scale.
// A parameter that keeps a spare buffer (Tensor::zero_grad) gets the copy.
// The values are those of the copy; only a -0 in g stays -0 (0 + -0 is +0).
void pass_gradient(const Tensor& t, const Tensor& g, double alpha = 1.0);

}  // namespace engine
