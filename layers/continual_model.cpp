#include "layers/continual_model.h"

#include <algorithm>
#include <sstream>
#include <stdexcept>

#include "layers/adaptable.h"
#include "layers/batch_norm.h"
#include "layers/conv2d.h"
#include "layers/linear.h"

namespace layers {

Method parse_method(const std::string& name) {
  for (Method m : {Method::naive, Method::joint, Method::finetune_head, Method::finetune_fc, Method::lora,
                   Method::cp_lora, Method::sena, Method::separate})
    if (to_string(m) == name) return m;
  throw std::invalid_argument("unknown method '" + name +
                              "' (expected naive, joint, finetune-head, finetune-fc, lora, cp-lora, sena, separate)");
}

std::string to_string(Method method) {
  switch (method) {
    case Method::naive: return "naive";
    case Method::joint: return "joint";
    case Method::finetune_head: return "finetune-head";
    case Method::finetune_fc: return "finetune-fc";
    case Method::lora: return "lora";
    case Method::cp_lora: return "cp-lora";
    case Method::sena: return "sena";
    case Method::separate: return "separate";
  }
  return "?";
}

bool is_adapter_method(Method method) { return method == Method::lora || method == Method::cp_lora; }

AdapterPlacement parse_adapt(const std::string& text) {
  AdapterPlacement where{0, false, false};
  std::stringstream stream(text);
  std::string token;
  bool any = false;
  while (std::getline(stream, token, ',')) {
    any = true;
    if (token == "all") {
      where.conv_layers = -1;
      where.dense = true;
    } else if (token == "conv") {
      where.conv_layers = -1;
    } else if (token == "fc") {
      where.dense = true;
    } else if (token == "head") {
      where.head = true;
    } else if (token == "none") {
    } else if (token.rfind("last-", 0) == 0) {
      size_t used = 0;
      int64_t n = -1;
      try {
        n = std::stoll(token.substr(5), &used);
      } catch (const std::exception&) {
      }
      if (n <= 0 || used != token.size() - 5)
        throw std::invalid_argument("adapt: bad '" + token + "' (expected last-N with N > 0)");
      where.conv_layers = n;
    } else {
      throw std::invalid_argument("adapt: unknown '" + token +
                                  "' (expected a comma list of all, conv, last-N, fc, head, none)");
    }
  }
  if (!any) throw std::invalid_argument("adapt: empty placement");
  return where;
}

namespace {

struct Slot {
  Module* parent;
  size_t index;
  Module& module() const { return parent->child(index); }
  std::shared_ptr<Module> shared() const { return parent->children()[index].second; }
};

// Leaves in forward order, looking through containers (Sequential).
void collect_leaves(Module& module, std::vector<Slot>& out) {
  for (size_t i = 0; i < module.children().size(); ++i) {
    Module& child = module.child(i);
    if (child.is_container())
      collect_leaves(child, out);
    else
      out.push_back({&module, i});
  }
}

bool is_weighted(Module& m) { return dynamic_cast<AdaptableLayer*>(&m) || dynamic_cast<TaskHead*>(&m); }

}  // namespace

ContinualModel::ContinualModel(std::shared_ptr<Module> network, ContinualOptions options)
    : network_(std::move(network)), options_(options), gen_(options.seed) {
  if (!network_ || !network_->is_container())
    throw std::invalid_argument("ContinualModel: the network must be a Sequential model");
  const NamedTensors params = network_->named_parameters();
  if (!params.empty()) {
    device_ = params.front().second.device();
    dtype_ = params.front().second.dtype();
  }
  training_ = network_->is_training();

  std::vector<Slot> leaves;
  collect_leaves(*network_, leaves);
  size_t head_index = leaves.size();
  for (size_t i = 0; i < leaves.size(); ++i)
    if (dynamic_cast<Linear*>(&leaves[i].module())) head_index = i;
  if (head_index == leaves.size())
    throw std::invalid_argument("ContinualModel: the network has no Linear layer to become the head");
  const auto& old_head = static_cast<const Linear&>(leaves[head_index].module());
  head_ = std::make_shared<TaskHead>(old_head.in_features(), options_.head);
  head_->train(training_);
  leaves[head_index].parent->replace_child(leaves[head_index].index, head_);

  std::vector<size_t> weighted;  // leaf indices of conv, dense and head layers
  for (size_t i = 0; i < leaves.size(); ++i) {
    Module& m = leaves[i].module();
    if (auto* conv = dynamic_cast<Conv2d*>(&m)) convs_.push_back(conv);
    if (auto* linear = dynamic_cast<Linear*>(&m)) dense_.push_back(linear);
    if (is_weighted(m)) weighted.push_back(i);
  }

  auto wrap = [&](const Slot& slot, PerTask::Base use = PerTask::Base::first_task) {
    auto wrapper = std::make_shared<PerTask>(slot.shared(), use);
    slot.parent->replace_child(slot.index, wrapper);
    per_task_.push_back(wrapper.get());
  };
  const AdapterOptions& a = options_.adapters;
  if (options_.adapt_first_task && !is_adapter_method(options_.method))
    throw std::invalid_argument("ContinualModel: adapt_first_task needs lora or cp-lora, not " +
                                to_string(options_.method));
  switch (options_.method) {
    case Method::lora:
    case Method::cp_lora:
      if (a.rank_conv <= 0 || a.rank_fc <= 0)
        throw std::invalid_argument("ContinualModel: adapter ranks must be positive, got conv " +
                                    std::to_string(a.rank_conv) + ", fc " + std::to_string(a.rank_fc));
      if (a.where.conv_layers > static_cast<int64_t>(convs_.size()))
        throw std::invalid_argument("ContinualModel: adapters on the last " + std::to_string(a.where.conv_layers) +
                                    " conv layers, but the network has " + std::to_string(convs_.size()));
      if (a.batch_norm != TaskBatchNorm::shared)
        for (const Slot& slot : leaves)
          if (dynamic_cast<BatchNorm2d*>(&slot.module()))
            wrap(slot, options_.adapt_first_task ? PerTask::Base::kept_apart : PerTask::Base::first_task);
      break;
    case Method::sena: {
      const int64_t n = static_cast<int64_t>(weighted.size());
      const int64_t shared = options_.sena_shared_layers < 0 ? n / 2 : options_.sena_shared_layers;
      if (shared < 1 || shared >= n)
        throw std::invalid_argument("ContinualModel: sena shares " + std::to_string(shared) +
                                    " layers of " + std::to_string(n) +
                                    "; it must share at least one and replicate at least the head");
      for (size_t i = weighted[static_cast<size_t>(shared)]; i < leaves.size(); ++i)
        if (i != head_index && !leaves[i].module().named_parameters().empty()) wrap(leaves[i]);
      break;
    }
    case Method::finetune_fc: {
      const int64_t k = options_.finetune_fc_layers;
      if (k < 1 || k - 1 > static_cast<int64_t>(dense_.size()))
        throw std::invalid_argument("ContinualModel: finetune-fc with " + std::to_string(k) +
                                    " dense layers, but the network has " +
                                    std::to_string(dense_.size() + 1) + " (head included)");
      int64_t to_wrap = k - 1;
      for (size_t i = head_index; i-- > 0 && to_wrap > 0;)
        if (dynamic_cast<Linear*>(&leaves[i].module())) {
          wrap(leaves[i]);
          --to_wrap;
        }
      break;
    }
    case Method::separate:
      for (size_t i = 0; i < leaves.size(); ++i)
        if (i != head_index && !leaves[i].module().named_parameters().empty()) wrap(leaves[i]);
      break;
    case Method::naive:
    case Method::joint:
    case Method::finetune_head: break;
  }
}

void ContinualModel::adopt(Module& module) const {
  module.to(dtype_);
  module.to(device_);
  module.train(training_);
}

int64_t ContinualModel::add_task(int64_t classes) {
  const int64_t t = num_tasks();
  if (t == 0 && options_.method == Method::separate)
    for (PerTask* per_task : per_task_) initial_.push_back(per_task->base().clone());
  if (t == 0 && options_.adapt_first_task) {
    network_->freeze();
    add_adapters(0);
    add_replicas(0);
  } else if (t > 0) {
    switch (options_.method) {
      case Method::naive:
        for (int64_t j = 0; j < t; ++j) head_->block(j).freeze();
        break;
      case Method::joint: break;
      case Method::finetune_head: network_->freeze(); break;
      case Method::finetune_fc:
      case Method::sena:
      case Method::separate:
        network_->freeze();
        add_replicas(t);
        break;
      case Method::lora:
      case Method::cp_lora:
        network_->freeze();
        add_adapters(t);
        add_replicas(t);
        break;
    }
  }
  engine::Generator* gen = options_.initialise ? &gen_ : nullptr;
  Linear& block = head_->add_task(classes, gen);
  adopt(block);
  if ((t > 0 || options_.adapt_first_task) && is_adapter_method(options_.method) && options_.adapters.where.head) {
    const AdapterOptions& a = options_.adapters;
    block.add_adapter(t, std::make_shared<LoRA>(block.in_features(), classes, a.rank_fc,
                                                lora_scaling(a.rank_fc, a.alpha, a.scaling), a.dropout,
                                                gen_.next_u64(), gen));
  }
  set_task(t);
  return t;
}

void ContinualModel::add_adapters(int64_t task) {
  const AdapterOptions& a = options_.adapters;
  engine::Generator* gen = options_.initialise ? &gen_ : nullptr;
  const int64_t n_conv = static_cast<int64_t>(convs_.size());
  const int64_t first = a.where.conv_layers < 0 ? 0 : n_conv - a.where.conv_layers;
  const double conv_scaling = lora_scaling(a.rank_conv, a.alpha, a.scaling);
  for (int64_t i = first; i < n_conv; ++i) {
    Conv2d& conv = *convs_[static_cast<size_t>(i)];
    if (options_.method == Method::lora)
      conv.add_adapter(task, std::make_shared<ConvLoRA>(conv.in_channels(), conv.out_channels(), conv.kernel(),
                                                        a.rank_conv, conv_scaling, gen));
    else
      conv.add_adapter(task, std::make_shared<CPConvLoRA>(conv.in_channels(), conv.out_channels(), conv.kernel(),
                                                          conv.kernel(), a.rank_conv, conv_scaling,
                                                          a.cp_input_factor, gen));
  }
  if (!a.where.dense) return;
  const double fc_scaling = lora_scaling(a.rank_fc, a.alpha, a.scaling);
  for (Linear* dense : dense_)
    dense->add_adapter(task, std::make_shared<LoRA>(dense->in_features(), dense->out_features(), a.rank_fc,
                                                    fc_scaling, a.dropout, gen_.next_u64(), gen));
}

void ContinualModel::add_replicas(int64_t task) {
  for (size_t i = 0; i < per_task_.size(); ++i) {
    PerTask& per_task = *per_task_[i];
    std::shared_ptr<Module> replica;
    bool trains = true;
    if (is_adapter_method(options_.method)) {
      // Batch norm copies start from the frozen network's statistics (the
      // backbone's or a previous task's), so that with dW = 0 a new task starts
      // exactly from it.
      const bool previous = options_.adapters.batch_norm == TaskBatchNorm::copy_previous_frozen;
      replica = (previous && task > 0 ? per_task.replica(task - 1) : per_task.base()).clone();
      trains = !previous;
    } else if (options_.method == Method::separate) {
      replica = initial_[i]->clone();
    } else {
      // Branches continue from the previous task's or start fresh.
      replica = per_task.replica(task - 1).clone();
      if (options_.branch_init == BranchInit::fresh && options_.initialise) replica->reset_all(gen_);
    }
    replica->set_requires_grad(trains);
    adopt(*replica);
    per_task.add_replica(std::move(replica));
  }
}

void ContinualModel::set_task(int64_t task) {
  if (task < 0 || task >= num_tasks())
    throw std::out_of_range("ContinualModel::set_task: task " + std::to_string(task) + " of " +
                            std::to_string(num_tasks()));
  network_->set_task(task);
  task_ = task;
}

ForwardResult ContinualModel::forward(const Tensor& x) {
  if (num_tasks() == 0) throw std::logic_error("ContinualModel::forward: no task yet; call add_task first");
  return {network_->forward(x), head_->class_mask(task_), head_->class_offset(task_)};
}

void ContinualModel::train(bool on) {
  network_->train(on);
  training_ = on;
}

void ContinualModel::to(engine::Device device) {
  network_->to(device);
  device_ = device;
}

void ContinualModel::to(engine::DType dtype) {
  network_->to(dtype);
  dtype_ = dtype;
}

std::vector<AdaptableLayer*> ContinualModel::adaptable_layers() const {
  std::vector<AdaptableLayer*> out;
  struct Walk {
    static void run(Module& m, std::vector<AdaptableLayer*>& out) {
      if (auto* layer = dynamic_cast<AdaptableLayer*>(&m)) out.push_back(layer);
      for (const auto& [name, child] : m.children()) run(*child, out);
    }
  };
  Walk::run(*network_, out);
  return out;
}

void ContinualModel::merge_adapters() {
  for (AdaptableLayer* layer : adaptable_layers())
    if (layer->adapter(task_) && !layer->merged()) layer->merge();
}

void ContinualModel::unmerge_adapters() {
  for (AdaptableLayer* layer : adaptable_layers())
    if (layer->merged()) layer->unmerge();
}

}  // namespace layers
