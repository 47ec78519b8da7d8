// Module: the base of every layer and model, as torch.nn.Module.
//
// A module owns named parameters (trainable tensors), buffers (state that is
// saved but not trained, such as batch norm's running statistics) and named
// child modules. Names compose with dots exactly as PyTorch's state_dict does:
// a Sequential's children are "0", "1", ...; VGG's are "features", "avgpool",
// "classifier", giving "features.0.weight", "features.1.running_mean". A child
// registered under the empty name lends its tensors to its parent's namespace;
// PerTask uses this so that the replica of task 0 keeps the plain PyTorch names.
//
// Tensor handles: a layer keeps handles to its own tensors (aliases of the ones
// registered here). Everything that changes a module's tensors does it in place
// (load_state_dict copies into them; to(Device) and to(DType) swap their storage
// inside the same TensorImpl), so every alias, including an optimiser's, stays
// valid.
//
// Tasks: every module knows the current task (set_task, recursive) and the task
// that owns it (kShared for the shared network, t for what was added for task t:
// adapters, batch norm copies, branches, head blocks). Parameter counts group by
// owner, by layer type and by part (conv features or classifier).
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "engine/npz.h"
#include "engine/random.h"
#include "engine/tensor.h"

namespace layers {

using engine::NamedTensors;
using engine::Tensor;

constexpr int64_t kShared = -1;  // owner task of the shared network

// Which part of a network a layer's parameters count toward.
enum class Part { features, classifier };

class Module {
 public:
  Module() = default;
  virtual ~Module() = default;
  Module(const Module&) = delete;
  Module& operator=(const Module&) = delete;

  virtual Tensor forward(const Tensor& x) = 0;
  virtual std::string type_name() const = 0;
  // One line like PyTorch's repr, e.g. "Conv2d(3, 32, kernel_size=3, stride=1, padding=0)".
  virtual std::string describe() const { return type_name() + "()"; }
  // Deep copy: same values, requires_grad, mode, tasks, device and dtype; children copied.
  virtual std::shared_ptr<Module> clone() const = 0;
  // PyTorch's default initialisation of this module's own tensors (not its children's).
  virtual void reset_parameters(engine::Generator& /*gen*/) {}
  // Sequential-like modules whose forward chains their children.
  virtual bool is_container() const { return false; }
  // True when forward always returns a tensor of its own whose values no
  // backward reads (its gradient only): a ReLU after it may then overwrite it
  // in place (Sequential::forward, engine::relu_).
  virtual bool fresh_output() const { return false; }
  // forward then ReLU, for a module with fresh_output(): the ReLU in place
  // (engine::relu_), or folded into the module's own op where it has one that
  // does both (BatchNorm2d). Sequential calls it for a module before a ReLU.
  virtual Tensor forward_relu(const Tensor& x);
  virtual Part part() const { return Part::classifier; }

  // ---- tensors, recursively, in PyTorch's state_dict order: a module's own
  // parameters, then its own buffers, then each child's.
  NamedTensors named_parameters() const;
  NamedTensors named_buffers() const;
  NamedTensors state_dict() const;
  std::vector<Tensor> parameters() const;
  // Parameters with requires_grad, i.e. what an optimiser should update.
  NamedTensors named_trainable_parameters() const;
  std::vector<Tensor> trainable_parameters() const;
  // Copies values into this module's tensors, matched by name. Everything is
  // checked before anything is written: every tensor of the module must be
  // present with its shape and dtype; entries the module does not have are an
  // error unless allow_unused. Files from PyTorch go through
  // load_npz_state_dict below.
  void load_state_dict(const NamedTensors& tensors, bool allow_unused = false);
  // Counters that random layers advance (dropout), "<path>.<name>", for
  // checkpoints that resume bit-identically; not part of state_dict().
  std::vector<std::pair<std::string, uint64_t>> named_counters() const;
  void load_counters(const std::vector<std::pair<std::string, uint64_t>>& counters);

  // ---- modes, recursive
  void train(bool on = true);
  void eval() { train(false); }
  bool is_training() const { return training_; }
  void freeze() { set_requires_grad(false); }
  void unfreeze() { set_requires_grad(true); }
  void set_requires_grad(bool requires_grad);
  void to(engine::Device device);
  void to(engine::DType dtype);
  virtual void set_task(int64_t task);
  int64_t task() const { return task_; }
  void set_owner_task(int64_t owner);
  int64_t owner_task() const { return owner_; }
  // reset_parameters of this module and every descendant, in order.
  void reset_all(engine::Generator& gen);

  // ---- structure
  const std::vector<std::pair<std::string, std::shared_ptr<Module>>>& children() const {
    return children_;
  }
  Module& child(size_t index) const;
  Module* find_child(const std::string& name) const;  // null when absent
  void replace_child(size_t index, std::shared_ptr<Module> module);
  // Own (non-recursive) tensors.
  const NamedTensors& own_parameters() const { return parameters_; }
  const NamedTensors& own_buffers() const { return buffers_; }

 protected:
  // Registered tensors require grad (parameters) or not (buffers). The
  // returned handle aliases the registered one.
  Tensor register_parameter(std::string name, Tensor tensor);
  Tensor register_buffer(std::string name, Tensor tensor);
  void register_counter(std::string name, uint64_t* counter);
  void register_module(std::string name, std::shared_ptr<Module> module);
  // For clone(): gives `shell`, a freshly constructed module of the same type
  // and configuration (own tensors registered in the same order, no children),
  // this module's values, flags and cloned children.
  std::shared_ptr<Module> finish_clone(std::shared_ptr<Module> shell) const;

 private:
  void collect(const std::string& prefix, bool parameters, bool buffers, NamedTensors& out) const;

  NamedTensors parameters_, buffers_;
  std::vector<std::pair<std::string, uint64_t*>> counters_;
  std::vector<std::pair<std::string, std::shared_ptr<Module>>> children_;
  bool training_ = true;
  int64_t task_ = 0;
  int64_t owner_ = kShared;
};

// "prefix.name", or the non-empty one of the two.
std::string join_name(const std::string& prefix, const std::string& name);
// A number as Python's repr prints it in describe() lines: 0.2, 1e-05.
std::string repr_number(double value);

// ---- weights from a file

// What load_npz_state_dict does with the file's classifier head: its last
// Linear, i.e. the last 2-D "<prefix>.weight" array of the file and the
// "<prefix>.bias" beside it.
enum class FileHead {
  load,  // like every other tensor (model-tool: the file is the whole model)
  skip,  // not loaded, and the model need not have it in that shape: a backbone
         // whose head has another class count than the tasks' (continual --init)
};

// What load_npz_state_dict found in the file.
struct LoadReport {
  int64_t loaded = 0;                // tensors copied into the model
  std::vector<std::string> skipped;  // FileHead::skip: "name (shape)" of the file's head
  int64_t batch_counters = 0;        // "<bn>.num_batches_tracked" checked, not kept
  // One line, e.g. "loaded 70 tensors from F; not loaded: the file's head classifier.6.weight (1000, 4096), ..."
  std::string describe(const std::filesystem::path& file) const;
};

// Loads a PyTorch state_dict saved as .npz (torchvision's, exported by
// scripts/export_torchvision.py, or this engine's save_npz) into `model` by
// name. Everything is checked before anything is written, and the problems
// are reported together (the first 20, then how many more) in one
// std::invalid_argument naming the file, each tensor and both shapes:
//  - missing: a tensor of the model that the file lacks;
//  - extra: an array of the file that names no tensor of the model, except
//    "<bn>.num_batches_tracked" where the model has "<bn>.running_mean" and
//    "<bn>.running_var" (PyTorch's batch norm counter): it must be a 0-d
//    integer, and it is checked, counted and not kept (batch_norm.h);
//  - mis-shaped: a shape other than the model's, or a dtype other than the
//    model's own ("<f4" for float32, "<f8" for float64; no silent conversion).
// With FileHead::skip the file's head (above) is neither loaded nor required,
// and the model's tensors of those names, if any, keep their values; everything
// else must match exactly. An unreadable file throws std::runtime_error
// (engine/npz.h).
LoadReport load_npz_state_dict(Module& model, const std::filesystem::path& file, FileHead head = FileHead::load);

// Parameter counts of a module tree (buffers are not parameters).
struct ParameterCounts {
  int64_t total = 0, trainable = 0, frozen = 0;
  int64_t features = 0, classifier = 0;                      // by Part
  int64_t trainable_features = 0, trainable_classifier = 0;  // the trainable ones by Part
  int64_t shared = 0;                                        // owner kShared
  std::vector<int64_t> per_task;                             // owner t, index t
  std::map<std::string, int64_t> by_type;                    // "Conv2d", "LoRA", ...
};
ParameterCounts count_parameters(const Module& root);

}  // namespace layers
