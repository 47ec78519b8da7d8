#include "layers/adaptable.h"

#include <stdexcept>

#include "engine/autograd.h"
#include "engine/ops.h"

namespace layers {

namespace {
std::string adapter_name(int64_t task) { return "adapters." + std::to_string(task); }
}  // namespace

Adapter* AdaptableLayer::adapter(int64_t task) const {
  return static_cast<Adapter*>(find_child(adapter_name(task)));
}

Adapter* AdaptableLayer::active_adapter() const { return merged() ? nullptr : adapter(task()); }

void AdaptableLayer::attach_adapter(int64_t task, std::shared_ptr<Adapter> adapter) {
  check_not_merged("attach an adapter");
  if (this->adapter(task))
    throw std::invalid_argument(type_name() + ": task " + std::to_string(task) + " already has an adapter");
  adapter->to(weight_.dtype());
  adapter->to(weight_.device());
  adapter->train(is_training());
  adapter->set_task(this->task());
  adapter->set_owner_task(task);
  register_module(adapter_name(task), std::move(adapter));
}

void AdaptableLayer::check_not_merged(const std::string& what) const {
  if (merged())
    throw std::logic_error(type_name() + ": cannot " + what + " while an adapter is merged; unmerge() first");
}

void AdaptableLayer::merge() {
  check_not_merged("merge again");
  Adapter* a = adapter(task());
  if (!a) throw std::logic_error(type_name() + "::merge: task " + std::to_string(task()) + " has no adapter");
  engine::NoGradGuard no_grad;
  merged_weight_backup_ = weight_.clone();
  weight_.copy_(engine::add(weight_, a->delta()));
}

void AdaptableLayer::unmerge() {
  if (!merged()) throw std::logic_error(type_name() + "::unmerge: nothing is merged");
  engine::NoGradGuard no_grad;
  weight_.copy_(merged_weight_backup_);
  merged_weight_backup_ = Tensor();
}

void AdaptableLayer::set_task(int64_t task) {
  if (task != this->task()) check_not_merged("switch task");
  Module::set_task(task);
}

}  // namespace layers
