#include "layers/module.h"

#include <set>
#include <sstream>
#include <stdexcept>

#include "engine/autograd.h"
#include "engine/ops.h"

namespace layers {

std::string join_name(const std::string& prefix, const std::string& name) {
  if (prefix.empty()) return name;
  if (name.empty()) return prefix;
  return prefix + "." + name;
}

std::string repr_number(double value) {
  std::ostringstream out;
  out << value;
  return out.str();
}

Tensor Module::forward_relu(const Tensor& x) {
  if (!fresh_output())
    throw std::logic_error(type_name() + "::forward_relu: its output is not its own to overwrite");
  return engine::relu_(forward(x));
}

Tensor Module::register_parameter(std::string name, Tensor tensor) {
  tensor.set_requires_grad(true);
  parameters_.emplace_back(std::move(name), tensor);
  return tensor;
}

Tensor Module::register_buffer(std::string name, Tensor tensor) {
  buffers_.emplace_back(std::move(name), tensor);
  return tensor;
}

void Module::register_counter(std::string name, uint64_t* counter) {
  counters_.emplace_back(std::move(name), counter);
}

void Module::register_module(std::string name, std::shared_ptr<Module> module) {
  if (!module) throw std::invalid_argument("Module::register_module: null module '" + name + "'");
  children_.emplace_back(std::move(name), std::move(module));
}

Module& Module::child(size_t index) const {
  if (index >= children_.size())
    throw std::out_of_range(type_name() + ": child " + std::to_string(index) + " of " +
                            std::to_string(children_.size()));
  return *children_[index].second;
}

Module* Module::find_child(const std::string& name) const {
  for (const auto& [child_name, module] : children_)
    if (child_name == name) return module.get();
  return nullptr;
}

void Module::replace_child(size_t index, std::shared_ptr<Module> module) {
  if (index >= children_.size() || !module)
    throw std::invalid_argument(type_name() + "::replace_child: bad index or null module");
  children_[index].second = std::move(module);
}

void Module::collect(const std::string& prefix, bool parameters, bool buffers,
                     NamedTensors& out) const {
  if (parameters)
    for (const auto& [name, t] : parameters_) out.emplace_back(join_name(prefix, name), t);
  if (buffers)
    for (const auto& [name, t] : buffers_) out.emplace_back(join_name(prefix, name), t);
  for (const auto& [name, module] : children_)
    module->collect(join_name(prefix, name), parameters, buffers, out);
}

NamedTensors Module::named_parameters() const {
  NamedTensors out;
  collect("", true, false, out);
  return out;
}

NamedTensors Module::named_buffers() const {
  NamedTensors out;
  collect("", false, true, out);
  return out;
}

// PyTorch's order is per module: parameters, buffers, then children; collect()
// with both flags walks exactly that way.
NamedTensors Module::state_dict() const {
  NamedTensors out;
  collect("", true, true, out);
  return out;
}

std::vector<Tensor> Module::parameters() const {
  std::vector<Tensor> out;
  for (auto& [name, t] : named_parameters()) out.push_back(t);
  return out;
}

NamedTensors Module::named_trainable_parameters() const {
  NamedTensors out;
  for (auto& [name, t] : named_parameters())
    if (t.requires_grad()) out.emplace_back(name, t);
  return out;
}

std::vector<Tensor> Module::trainable_parameters() const {
  std::vector<Tensor> out;
  for (auto& [name, t] : named_trainable_parameters()) out.push_back(t);
  return out;
}

namespace {
bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}
}  // namespace

void Module::load_state_dict(const NamedTensors& tensors, bool allow_unused) {
  std::map<std::string, const Tensor*> given;
  for (const auto& [name, t] : tensors)
    if (!given.emplace(name, &t).second)
      throw std::invalid_argument("load_state_dict: name '" + name + "' appears twice");
  const NamedTensors destination = state_dict();
  std::set<std::string> used;
  for (const auto& [name, dst] : destination) {
    auto it = given.find(name);
    if (it == given.end())
      throw std::invalid_argument("load_state_dict: missing '" + name + "' " +
                                  engine::to_string(dst.shape()));
    const Tensor& src = *it->second;
    if (src.shape() != dst.shape() || src.dtype() != dst.dtype())
      throw std::invalid_argument("load_state_dict: '" + name + "' is " +
                                  engine::to_string(src.shape()) + " " +
                                  engine::to_string(src.dtype()) + ", the model has " +
                                  engine::to_string(dst.shape()) + " " +
                                  engine::to_string(dst.dtype()));
    used.insert(name);
  }
  if (!allow_unused)
    for (const auto& [name, t] : tensors)
      if (!used.count(name))
        throw std::invalid_argument("load_state_dict: unexpected '" + name + "' " +
                                    engine::to_string(t.shape()) + " (no such tensor in the model)");
  engine::NoGradGuard no_grad;
  for (const auto& [name, dst] : destination) {
    Tensor target = dst;
    target.copy_(given.at(name)->to(dst.device()));
  }
}

namespace {
constexpr size_t kProblemsShown = 20;  // a wrong architecture can give hundreds

bool is_integer_descr(const std::string& descr) {
  return descr.size() >= 2 && (descr[1] == 'i' || descr[1] == 'u');
}

// The file's head as FileHead describes it: the last 2-D ".weight" and its ".bias".
std::set<std::string> file_head_names(const engine::NamedArrays& arrays) {
  for (auto it = arrays.rbegin(); it != arrays.rend(); ++it) {
    const std::string& name = it->first;
    if (it->second.shape.size() == 2 && ends_with(name, ".weight")) {
      const std::string prefix = name.substr(0, name.size() - 7);
      return {name, prefix + ".bias"};
    }
  }
  return {};
}
}  // namespace

LoadReport load_npz_state_dict(Module& model, const std::filesystem::path& file, FileHead head) {
  const engine::NamedArrays arrays = engine::read_npz(file);
  const NamedTensors destination = model.state_dict();
  std::map<std::string, Tensor> wanted(destination.begin(), destination.end());
  const std::set<std::string> head_names = head == FileHead::skip ? file_head_names(arrays) : std::set<std::string>{};

  LoadReport report;
  std::vector<std::string> problems;
  std::set<std::string> in_file;
  NamedTensors sources;  // (model name, file tensor) to copy once all is checked
  const std::string counter = "num_batches_tracked";
  for (const auto& [name, array] : arrays) {
    in_file.insert(name);
    const std::string shape = engine::to_string(array.shape);
    if (head_names.count(name)) {
      report.skipped.push_back(name + " " + shape);
      continue;
    }
    if (ends_with(name, counter)) {
      const std::string bn = name.substr(0, name.size() - counter.size());  // "features.1." or ""
      if (wanted.count(bn + "running_mean") && wanted.count(bn + "running_var")) {
        if (!array.shape.empty() || !is_integer_descr(array.descr))
          problems.push_back("'" + name + "' is " + shape + " " + array.descr +
                             ", expected a 0-d integer (PyTorch's batch norm counter)");
        else
          ++report.batch_counters;
        continue;
      }
    }
    const auto it = wanted.find(name);
    if (it == wanted.end()) {
      problems.push_back("extra '" + name + "' " + shape + ": the model has no such tensor");
      continue;
    }
    const Tensor& dst = it->second;
    const std::string model_has = engine::to_string(dst.shape()) + " " + engine::to_string(dst.dtype());
    if (array.shape != dst.shape()) {
      problems.push_back("'" + name + "' is " + shape + " in the file, the model has " + model_has);
      continue;
    }
    Tensor source;
    try {
      source = engine::to_tensor(array);
    } catch (const std::exception&) {
      // Non-float arrays; the message below names the dtype.
    }
    if (!source.defined() || source.dtype() != dst.dtype()) {
      problems.push_back("'" + name + "' is " + shape + " " + array.descr + " in the file, the model has " +
                         model_has);
      continue;
    }
    sources.emplace_back(name, source);
  }
  for (const auto& [name, t] : destination)
    if (!in_file.count(name) && !head_names.count(name))
      problems.push_back("missing '" + name + "' " + engine::to_string(t.shape()) + ": not in the file");

  if (!problems.empty()) {
    std::string message = file.string() + " does not fit the model (" + std::to_string(problems.size()) +
                          (problems.size() == 1 ? " problem" : " problems") + "): ";
    for (size_t i = 0; i < problems.size() && i < kProblemsShown; ++i) message += (i ? "; " : "") + problems[i];
    if (problems.size() > kProblemsShown)
      message += "; and " + std::to_string(problems.size() - kProblemsShown) + " more";
    throw std::invalid_argument(message);
  }
  engine::NoGradGuard no_grad;
  for (const auto& [name, source] : sources) {
    Tensor target = wanted.at(name);
    target.copy_(source.to(target.device()));
  }
  report.loaded = static_cast<int64_t>(sources.size());
  return report;
}

std::string LoadReport::describe(const std::filesystem::path& file) const {
  std::string text = "loaded " + std::to_string(loaded) + " tensors from " + file.string();
  if (batch_counters > 0)
    text += " (" + std::to_string(batch_counters) + " num_batches_tracked counters checked, not kept)";
  if (!skipped.empty()) {
    text += "; not loaded: the file's head";
    for (size_t i = 0; i < skipped.size(); ++i) text += (i ? ", " : " ") + skipped[i];
  }
  return text;
}

std::vector<std::pair<std::string, uint64_t>> Module::named_counters() const {
  std::vector<std::pair<std::string, uint64_t>> out;
  struct Walk {
    static void run(const Module& m, const std::string& prefix,
                    std::vector<std::pair<std::string, uint64_t>>& out) {
      for (const auto& [name, counter] : m.counters_) out.emplace_back(join_name(prefix, name), *counter);
      for (const auto& [name, child] : m.children_) run(*child, join_name(prefix, name), out);
    }
  };
  Walk::run(*this, "", out);
  return out;
}

void Module::load_counters(const std::vector<std::pair<std::string, uint64_t>>& counters) {
  std::map<std::string, uint64_t> given(counters.begin(), counters.end());
  struct Walk {
    static void run(Module& m, const std::string& prefix, const std::map<std::string, uint64_t>& given) {
      for (auto& [name, counter] : m.counters_) {
        auto it = given.find(join_name(prefix, name));
        if (it == given.end())
          throw std::invalid_argument("load_counters: missing '" + join_name(prefix, name) + "'");
        *counter = it->second;
      }
      for (auto& [name, child] : m.children_) run(*child, join_name(prefix, name), given);
    }
  };
  Walk::run(*this, "", given);
}

void Module::train(bool on) {
  training_ = on;
  for (auto& [name, module] : children_) module->train(on);
}

void Module::set_requires_grad(bool requires_grad) {
  for (auto& [name, t] : parameters_) {
    t.set_requires_grad(requires_grad);
    if (!requires_grad) t.zero_grad();
  }
  for (auto& [name, module] : children_) module->set_requires_grad(requires_grad);
}

namespace {
// Puts `converted`'s storage and dtype into t's own TensorImpl, so that every
// handle to t sees the change. The old gradient no longer matches and is dropped.
void replace_in_place(Tensor& t, const Tensor& converted) {
  engine::TensorImpl* impl = t.impl();
  impl->storage = converted.impl()->storage;
  impl->dtype = converted.dtype();
  impl->grad.reset();
}
}  // namespace

void Module::to(engine::Device device) {
  for (auto* list : {&parameters_, &buffers_})
    for (auto& [name, t] : *list)
      if (t.device() != device) replace_in_place(t, t.to(device));
  for (auto& [name, module] : children_) module->to(device);
}

void Module::to(engine::DType dtype) {
  for (auto* list : {&parameters_, &buffers_})
    for (auto& [name, t] : *list)
      if (t.dtype() != dtype) replace_in_place(t, t.to(dtype));
  for (auto& [name, module] : children_) module->to(dtype);
}

void Module::set_task(int64_t task) {
  if (task < 0) throw std::invalid_argument(type_name() + "::set_task: negative task " + std::to_string(task));
  task_ = task;
  for (auto& [name, module] : children_) module->set_task(task);
}

void Module::set_owner_task(int64_t owner) {
  owner_ = owner;
  for (auto& [name, module] : children_) module->set_owner_task(owner);
}

void Module::reset_all(engine::Generator& gen) {
  reset_parameters(gen);
  for (auto& [name, module] : children_) module->reset_all(gen);
}

std::shared_ptr<Module> Module::finish_clone(std::shared_ptr<Module> shell) const {
  if (shell->parameters_.size() != parameters_.size() || shell->buffers_.size() != buffers_.size() ||
      shell->counters_.size() != counters_.size())
    throw std::logic_error(type_name() + "::clone: the shell's tensors do not match");
  engine::NoGradGuard no_grad;
  for (size_t i = 0; i < parameters_.size(); ++i) {
    const Tensor& src = parameters_[i].second;
    replace_in_place(shell->parameters_[i].second, src.clone());
    shell->parameters_[i].second.set_requires_grad(src.requires_grad());
  }
  for (size_t i = 0; i < buffers_.size(); ++i)
    replace_in_place(shell->buffers_[i].second, buffers_[i].second.clone());
  for (size_t i = 0; i < counters_.size(); ++i) *shell->counters_[i].second = *counters_[i].second;
  shell->children_.clear();
  for (const auto& [name, module] : children_) shell->children_.emplace_back(name, module->clone());
  shell->training_ = training_;
  shell->task_ = task_;
  shell->owner_ = owner_;
  return shell;
}

ParameterCounts count_parameters(const Module& root) {
  ParameterCounts counts;
  struct Walk {
    static void run(const Module& m, ParameterCounts& c) {
      for (const auto& [name, t] : m.own_parameters()) {
        const int64_t n = t.numel();
        const bool trainable = t.requires_grad();
        c.total += n;
        (trainable ? c.trainable : c.frozen) += n;
        if (m.part() == Part::features) {
          c.features += n;
          if (trainable) c.trainable_features += n;
        } else {
          c.classifier += n;
          if (trainable) c.trainable_classifier += n;
        }
        if (m.owner_task() == kShared) {
          c.shared += n;
        } else {
          if (static_cast<int64_t>(c.per_task.size()) <= m.owner_task())
            c.per_task.resize(static_cast<size_t>(m.owner_task() + 1), 0);
          c.per_task[static_cast<size_t>(m.owner_task())] += n;
        }
        c.by_type[m.type_name()] += n;
      }
      for (const auto& [name, child] : m.children()) run(*child, c);
    }
  };
  Walk::run(root, counts);
  return counts;
}

}  // namespace layers
