#include "engine/autograd.h"

#include <stdexcept>
#include <unordered_set>

#include "engine/backend.h"

namespace engine {

namespace {
thread_local bool grad_mode = true;
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
            std::function<void(const Tensor& dy)> backward) {
  auto node = std::make_shared<Node>();
  node->op = std::move(op);
  // Undefined inputs (an absent bias) have no gradient to receive.
  for (Tensor& t : inputs)
    if (t.defined()) node->inputs.push_back(std::move(t));
  node->backward = std::move(backward);
  output.impl()->requires_grad = true;
  output.impl()->grad_fn = std::move(node);
}

Tensor grad_buffer(const Tensor& t) {
  TensorImpl* impl = t.impl();
  if (!impl->grad) impl->grad = Tensor::zeros(t.shape(), t.dtype(), t.device()).impl_ptr();
  return Tensor(impl->grad);
}

void Tensor::backward() const {
  if (numel() != 1)
    throw std::invalid_argument("backward() needs a one-element tensor, got shape " +
                                to_string(shape()));
  if (!requires_grad()) throw std::invalid_argument("backward() on a tensor that does not require grad");

  // Iterative post-order DFS gives a topological order (inputs before outputs).
  // `order` owns its tensors: releasing a node below frees the inputs it held.
  std::vector<std::shared_ptr<TensorImpl>> order;
  std::unordered_set<TensorImpl*> visited;
  std::vector<std::pair<std::shared_ptr<TensorImpl>, size_t>> stack{{impl_ptr(), 0}};
  visited.insert(impl());
  while (!stack.empty()) {
    std::shared_ptr<TensorImpl> node_impl = stack.back().first;
    const size_t next_input = stack.back().second;
    const auto& fn = node_impl->grad_fn;
    if (fn && next_input < fn->inputs.size()) {
      ++stack.back().second;  // before push_back, which may reallocate
      const std::shared_ptr<TensorImpl>& input = fn->inputs[next_input].impl_ptr();
      if (input->requires_grad && visited.insert(input.get()).second) stack.push_back({input, 0});
      continue;
    }
    order.push_back(std::move(node_impl));
    stack.pop_back();
  }

  // Seed d(out)/d(out) = 1, then walk outputs before inputs.
  dispatch_dtype(dtype(), [&]<class T>() {
    backend(device()).kernels<T>().fill(grad_buffer(*this).data<T>(), 1, T(1));
  });
  for (auto it = order.rbegin(); it != order.rend(); ++it) {
    TensorImpl* t = it->get();
    if (!t->grad_fn) continue;
    if (t->grad) t->grad_fn->backward(Tensor(t->grad));
    // Free the graph as we go: the node's saved tensors and the non-leaf gradient.
    t->grad_fn.reset();
    t->grad.reset();
  }
}

}  // namespace engine
