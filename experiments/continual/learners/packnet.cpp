#include "experiments/continual/learners/packnet.h"

#include <algorithm>
#include <cmath>
#include <set>
#include <stdexcept>

#include "engine/autograd.h"
#include "layers/adaptable.h"

namespace continual {

using engine::Tensor;

namespace {

// The conv and dense weights of `module` and its descendants, with their
// state names; the heads are left out (each task's block is its own).
void collect_weights(const layers::Module& module, const std::string& prefix, engine::NamedTensors& out) {
  if (dynamic_cast<const layers::TaskHead*>(&module)) return;
  if (const auto* layer = dynamic_cast<const layers::AdaptableLayer*>(&module))
    out.push_back({layers::join_name(prefix, "weight"), layer->weight()});
  for (const auto& [name, child] : module.children()) collect_weights(*child, layers::join_name(prefix, name), out);
}

// A weight's values on the CPU (the weight itself there, aliased; a copy from
// another device), and back where they came from once changed.
Tensor on_host(const Tensor& weight) { return weight.to(engine::Device::cpu); }
void write_back(Tensor& weight, const Tensor& host, const char* writer) {
  if (weight.device() == engine::Device::cpu)
    weight.bump_version(writer);  // written in place
  else
    weight.copy_(host.to(weight.device()));
}

float owner_of(int64_t task) { return static_cast<float>(task + 1); }

}  // namespace

PackNet::PackNet(std::unique_ptr<Learner> base, layers::ContinualModel& model, double prune, int64_t retrain_epochs)
    : WrappedLearner(std::move(base)), prune_(prune), retrain_epochs_(retrain_epochs) {
  if (!(prune > 0 && prune < 1)) throw std::invalid_argument("--prune: must lie in (0, 1)");
  if (retrain_epochs < 0) throw std::invalid_argument("--retrain-epochs: must be >= 0");
  engine::NamedTensors weights;
  collect_weights(model.network(), "", weights);
  if (weights.empty()) throw std::invalid_argument("packnet: the network has no conv or dense weight to share");
  for (const auto& [name, weight] : weights) {
    masked_.push_back({name, weight, Tensor::zeros(weight.shape(), engine::DType::f32, engine::Device::cpu), {}});
    owner_values_ += weight.numel();
  }
}

void PackNet::hold_weights() {
  for (Masked& m : masked_) m.held = on_host(m.weight).clone();
}

std::vector<Tensor> PackNet::begin_task(int64_t task, const std::vector<int64_t>& classes) {
  std::vector<Tensor> trainable = base().begin_task(task, classes);
  newest_ = task;
  pruned_ = false;
  if (task > 0) {
    for (const Masked& m : masked_) {
      const float* owner = m.owner.data<float>();
      if (std::none_of(owner, owner + m.owner.numel(), [](float o) { return o == 0; }))
        throw std::runtime_error("packnet: task " + std::to_string(task + 1) + " has no free weights left in layer " +
                                 m.name + " (earlier tasks keep all " + std::to_string(m.owner.numel()) +
                                 "); raise --prune or run fewer tasks");
    }
    // Biases and batch norm stay as task 0 left them; the head block of this
    // task (what it added) and the shared weights train.
    std::set<std::string> added;
    for (const auto& [name, tensor] : base().task_state(task)) added.insert(name);
    std::set<const engine::TensorImpl*> weights;
    for (const Masked& m : masked_) weights.insert(m.weight.impl());
    for (auto& [name, tensor] : base().state())
      if (tensor.requires_grad() && !added.contains(name) && !weights.contains(tensor.impl()))
        tensor.set_requires_grad(false);
    std::erase_if(trainable, [](const Tensor& t) { return !t.requires_grad(); });
  }
  hold_weights();
  return trainable;
}

NewParams PackNet::new_params(int64_t task) const {
  NewParams p = base().new_params(task);
  p.method_values = task == 0 ? owner_values_ : 0;
  return p;
}

Tensor PackNet::forward(const Tensor& images, int64_t task, bool training) {
  if (task >= newest_) return base().forward(images, task, training);
  if (engine::grad_enabled())
    throw std::logic_error("packnet: the network of task " + std::to_string(task + 1) + " (task " +
                           std::to_string(newest_ + 1) + " is the newest) is for evaluation under a NoGradGuard");
  // Task `task` sees the weights of tasks 0..task: the others are zero for
  // this pass and put back after it, whatever happens in it.
  struct PutBack {
    std::vector<Masked>& masked;
    std::vector<Tensor> full;
    ~PutBack() {
      for (size_t i = 0; i < full.size(); ++i) masked[i].weight.copy_(full[i]);
    }
  } put_back{masked_, {}};
  const float last = owner_of(task);
  for (Masked& m : masked_) {
    put_back.full.push_back(m.weight.clone());
    Tensor host = on_host(m.weight).clone();
    const float* owner = m.owner.data<float>();
    engine::dispatch_dtype(host.dtype(), [&]<class T>() {
      T* w = host.data<T>();
      const int64_t n = host.numel();  // hoisted: numel() walks the shape
      for (int64_t i = 0; i < n; ++i)
        if (!(owner[i] >= 1 && owner[i] <= last)) w[i] = 0;
    });
    m.weight.copy_(host.to(m.weight.device()));
  }
  return base().forward(images, task, training);
}

void PackNet::after_step(int64_t task) {
  if (task != newest_)
    throw std::logic_error("packnet: a step of task " + std::to_string(task + 1) + " while task " +
                           std::to_string(newest_ + 1) + " trains");
  // Training, the task's weights are the free ones; retraining, those it kept.
  const float trains = pruned_ ? owner_of(task) : 0;
  engine::NoGradGuard no_grad;
  for (Masked& m : masked_) {
    Tensor host = on_host(m.weight);
    const float* owner = m.owner.data<float>();
    engine::dispatch_dtype(host.dtype(), [&]<class T>() {
      T* w = host.data<T>();
      const T* held = m.held.data<T>();
      const int64_t n = host.numel();  // hoisted: numel() walks the shape
      for (int64_t i = 0; i < n; ++i)
        if (owner[i] != trains) w[i] = held[i];
    });
    write_back(m.weight, host, "packnet after_step");
  }
}

int64_t PackNet::prune(int64_t task) {
  if (task != newest_)
    throw std::logic_error("packnet: pruning task " + std::to_string(task + 1) + " while task " +
                           std::to_string(newest_ + 1) + " is the newest");
  engine::NoGradGuard no_grad;
  for (Masked& m : masked_) {
    Tensor host = on_host(m.weight);
    float* owner = m.owner.data<float>();
    std::vector<int64_t> free;
    for (int64_t i = 0; i < m.owner.numel(); ++i)
      if (owner[i] == 0) free.push_back(i);
    const auto count = static_cast<int64_t>(free.size());
    const int64_t pruned = std::llround(prune_ * static_cast<double>(count));
    if (pruned >= count)
      throw std::runtime_error("packnet: pruning " + layers::repr_number(prune_) + " of the " +
                               std::to_string(count) + " free weights of layer " + m.name + " leaves task " +
                               std::to_string(task + 1) + " none of its own; lower --prune");
    engine::dispatch_dtype(host.dtype(), [&]<class T>() {
      T* w = host.data<T>();
      // Smallest magnitudes first; ties by position, so the choice is the same everywhere.
      std::nth_element(free.begin(), free.begin() + pruned, free.end(), [w](int64_t a, int64_t b) {
        const T wa = std::abs(w[a]), wb = std::abs(w[b]);
        return wa < wb || (wa == wb && a < b);
      });
      for (int64_t k = 0; k < pruned; ++k) w[free[k]] = 0;
    });
    for (int64_t k = pruned; k < count; ++k) owner[free[k]] = owner_of(task);
    write_back(m.weight, host, "packnet prune");
  }
  pruned_ = true;
  hold_weights();
  return retrain_epochs_;
}

engine::NamedTensors PackNet::state() {
  engine::NamedTensors all = base().state();
  for (auto& entry : method_state()) all.push_back(std::move(entry));
  return all;
}

engine::NamedTensors PackNet::task_state(int64_t task) {
  engine::NamedTensors part = base().task_state(task);
  if (task == 0)
    for (auto& entry : method_state()) part.push_back(std::move(entry));
  return part;
}

engine::NamedTensors PackNet::method_state() {
  engine::NamedTensors mine;
  for (const Masked& m : masked_) mine.push_back({"packnet.owner." + m.name, m.owner});
  return mine;
}

}  // namespace continual
