#include "engine/autograd.h"

#include <stdexcept>
#include <unordered_set>

#include "engine/backend.h"

namespace engine {

namespace {
thread_local bool grad_mode = true;

// Empties `node` (closure, saved tensors, inputs) and moves into `pending` the
// grad_fn of every input that nothing else holds, instead of letting the
// inputs' destructors free those nodes recursively.
void release_into(Node& node, std::vector<std::shared_ptr<Node>>& pending) {
  node.backward = nullptr;  // its captures are inputs, still held below, or leaf-like
  node.saved.clear();
  for (Tensor& input : node.inputs) {
    const std::shared_ptr<TensorImpl>& impl = input.impl_ptr();
    if (impl.use_count() == 1 && impl->grad_fn.use_count() == 1)
      pending.push_back(std::move(impl->grad_fn));
  }
  node.inputs.clear();
}

[[noreturn]] void second_backward_error(const TensorImpl& t) {
  throw std::runtime_error(
      "backward(): trying to backward through the graph a second time: the " + t.released_op +
      " that produced a tensor of shape " + to_string(t.shape) +
      " was released by an earlier backward(); run the forward again");
}

void check_saved_versions(const Node& node) {
  for (const SavedVersion& s : node.saved)
    if (s.storage->version != s.version)
      throw std::runtime_error("backward(): a tensor of shape " + to_string(s.shape) +
                               " saved by " + node.op + " was modified in place by " +
                               s.storage->last_writer +
                               " after the forward; backward needs its old values");
}
}  // namespace

// A graph's nodes chain through their inputs' grad_fn: freed one by one here,
// a chain of any length takes constant stack.
Node::~Node() {
  std::vector<std::shared_ptr<Node>> pending;
  release_into(*this, pending);
  while (!pending.empty()) {
    std::shared_ptr<Node> node = std::move(pending.back());
    pending.pop_back();
    release_into(*node, pending);
  }  // each node is destroyed empty, so its own ~Node finds nothing to free
}

bool grad_enabled() { return grad_mode; }

NoGradGuard::NoGradGuard() : previous_(grad_mode) { grad_mode = false; }
NoGradGuard::~NoGradGuard() { grad_mode = previous_; }

bool needs_grad(std::initializer_list<const Tensor*> inputs) {
  if (!grad_mode) return false;
  for (const Tensor* t : inputs)
    if (t && t->defined() && t->requires_grad()) return true;
  return false;
}

void record(Tensor& output, std::string op, std::vector<Tensor> inputs,
            const std::vector<Tensor>& saved, std::function<void(const Tensor& dy)> backward) {
  auto node = std::make_shared<Node>();
  node->op = std::move(op);
  // Undefined inputs (an absent bias) and frozen ones receive no gradient.
  for (Tensor& t : inputs)
    if (t.defined() && t.requires_grad()) node->inputs.push_back(std::move(t));
  for (const Tensor& t : saved)
    if (t.defined()) node->saved.push_back({t.impl()->storage, t.version(), t.shape()});
  node->backward = std::move(backward);
  output.impl()->requires_grad = true;
  output.impl()->grad_fn = std::move(node);
}

Tensor grad_target(const Tensor& t) { return t.defined() && t.requires_grad() ? t : Tensor(); }

Tensor grad_buffer(const Tensor& t) {
  TensorImpl* impl = t.impl();
  if (!impl->grad) {
    std::shared_ptr<TensorImpl> spare = std::move(impl->spare_grad);
    // Reused only where this slot is its one holder: a handle someone kept
    // from before zero_grad must not see the new gradient.
    if (spare && spare.use_count() == 1 && spare->storage.use_count() == 1 && spare->shape == t.shape() &&
        spare->dtype == t.dtype() && spare->storage->device == t.device()) {
      Tensor reused(std::move(spare));
      dispatch_dtype(reused.dtype(), [&]<class T>() {
        backend(reused.device()).kernels<T>().fill(reused.data<T>(), reused.numel(), T(0));
      });
      impl->grad = reused.impl_ptr();
    } else {
      impl->grad = Tensor::zeros(t.shape(), t.dtype(), t.device()).impl_ptr();
    }
  }
  return Tensor(impl->grad);
}

void pass_gradient(const Tensor& t, const Tensor& g, double alpha) {
  TensorImpl* impl = t.impl();
  // A parameter's spare buffer is reused rather than taking g: its gradient
  // stays where it was first allocated, not among this step's activations.
  const bool take = !impl->grad && !impl->spare_grad && g.impl()->handed_to_node && g.impl_ptr().use_count() == 1 &&
                    g.impl()->storage.use_count() == 1 && g.numel() == t.numel() &&
                    g.dtype() == t.dtype() && g.device() == t.device();
  dispatch_dtype(t.dtype(), [&]<class T>() {
    const Kernels<T>& kern = backend(t.device()).kernels<T>();
    if (!take) {
      kern.axpy(t.numel(), static_cast<T>(alpha), g.data<T>(), grad_buffer(t).data<T>());
      return;
    }
    Tensor grad = g.detach();  // g's bytes, read in t's shape
    grad.impl()->shape = t.shape();
    if (alpha != 1.0) kern.scale(grad.numel(), static_cast<T>(alpha), grad.data<T>(), grad.data<T>());
    impl->grad = grad.impl_ptr();
  });
}

void Tensor::backward() const {
  if (numel() != 1)
    throw std::invalid_argument("backward() needs a one-element tensor, got shape " +
                                to_string(shape()) + " (or backward(gradient) with a gradient of that shape)");
  backward(Tensor::full(shape(), 1.0, dtype(), device()));
}

void Tensor::backward(const Tensor& gradient) const {
  if (!requires_grad()) throw std::invalid_argument("backward() on a tensor that does not require grad");
  if (!gradient.defined()) throw std::invalid_argument("backward(gradient): the gradient is undefined");
  check_same_shape("backward(gradient)", *this, gradient);
  check_same_dtype_device("backward(gradient)", *this, gradient);

  // Iterative post-order DFS gives a topological order (inputs before outputs).
  // `order` holds each tensor until its turn below, then lets it go.
  std::vector<std::shared_ptr<TensorImpl>> order;
  std::unordered_set<TensorImpl*> visited;
  std::vector<std::pair<std::shared_ptr<TensorImpl>, size_t>> stack{{impl_ptr(), 0}};
  visited.insert(impl());
  while (!stack.empty()) {
    std::shared_ptr<TensorImpl> node_impl = stack.back().first;
    const size_t next_input = stack.back().second;
    const auto& fn = node_impl->grad_fn;
    if (!fn && !node_impl->released_op.empty()) second_backward_error(*node_impl);
    if (fn && next_input < fn->inputs.size()) {
      ++stack.back().second;  // before push_back, which may reallocate
      const std::shared_ptr<TensorImpl>& input = fn->inputs[next_input].impl_ptr();
      if (visited.insert(input.get()).second) stack.push_back({input, 0});
      continue;
    }
    order.push_back(std::move(node_impl));
    stack.pop_back();
  }
  // Refuse before any gradient is written.
  for (const auto& t : order)
    if (t->grad_fn) check_saved_versions(*t->grad_fn);

  // Add the gradient (a leaf's gradient accumulates like any other), then walk
  // outputs before inputs.
  dispatch_dtype(dtype(), [&]<class T>() {
    backend(device()).kernels<T>().axpy(numel(), T(1), gradient.data<T>(), grad_buffer(*this).data<T>());
  });
  for (auto it = order.rbegin(); it != order.rend(); ++it) {
    const std::shared_ptr<TensorImpl> t = std::move(*it);
    if (!t->grad_fn) continue;
    // Take the node and the non-leaf gradient: both are freed when this
    // iteration ends, and with them the tensors only this node still held.
    const std::shared_ptr<Node> node = std::move(t->grad_fn);
    t->released_op = node->op;
    const Tensor dy(std::move(t->grad));
    if (!dy.defined()) continue;
    dy.impl()->handed_to_node = true;
    node->backward(dy);
  }
}

}  // namespace engine
