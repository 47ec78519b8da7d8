// ContinualModel: a network that learns tasks in sequence (task-incremental:
// the task id is known at test time), with one of the study's methods.
//
// How the experiment runner uses it:
//
//   auto net = layers::make_model("sena32", layers::parse_input("28x28x1"), classes_of_task0, {seed});
//   layers::ContinualModel model(net, options);       // options.method = Method::lora, ...
//   for each task t:
//     model.add_task(classes_of_t);                   // adds and switches to t; freezes per method
//     engine::Adam opt(model.trainable_parameters(), lr, ...);
//     model.train();
//     for each batch (x, local labels y):
//       auto out = model.forward(x);                  // out.logits, out.class_mask, out.label_offset
//       labels = y + out.label_offset;
//       loss = engine::cross_entropy(out.logits, labels, out.class_mask); loss.backward(); opt.step(); ...
//     model.eval();
//     for each task j <= t: model.set_task(j); predictions = engine::masked_argmax(out.logits, out.class_mask) - offset
//   checkpoints: model.state_dict() / load_state_dict() (names -> tensors, engine/npz.h's
//   save_npz / read_npz); a fresh model is rebuilt by the same add_task calls first.
//   model.counters() / load_counters() hold the dropout counters for a bit-identical resume.
//   Parameter figures: model.counts() right after add_task(t): counts().trainable is what task t
//   trains (its "new" parameters), split into trainable_features (conv part) / trainable_classifier.
//
// Methods, at add_task(t) for t >= 1 (task 0 trains the whole network and its head,
// except with adapt_first_task):
//   naive          the shared network keeps training; earlier heads are frozen
//   joint          nothing is frozen (the runner feeds the data of every task so far)
//   finetune_head  everything frozen but the new task's head (the study's finetune-1)
//   finetune_fc    the last k dense layers, head included, are per task (finetune-k);
//                  the rest is frozen and shared
//   lora, cp_lora  everything frozen; the new task gets LoRA on the dense layers and
//                  ConvLoRA (lora) or CP-ConvLoRA (cp_lora) on the chosen conv layers,
//                  its own copy of every BatchNorm2d (TaskBatchNorm says which) and its head.
//                  With adapt_first_task task 0 too gets only these over the frozen
//                  network (the study's LoraVGG19), so the backbone never changes.
//   sena           SenaCNN: the first layers (half by default) are frozen and shared;
//                  the rest is replicated per task (fresh or copied from the previous task)
//   separate       the paper's upper bound: every layer is replicated per task, each
//                  replica starting from the network as it stood before task 0 (the
//                  loaded backbone or the seeded initialisation) and trained on its task alone
// Heads: per task (logits of the task's classes only) or shared (logits of every class
// so far, other tasks' classes masked; each task's rows are its own block).
// Frozen parts never change: frozen BatchNorm2d layers also keep their statistics.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "layers/adapters.h"
#include "layers/module.h"
#include "layers/per_task.h"

namespace layers {

class AdaptableLayer;
class Conv2d;

enum class Method { naive, joint, finetune_head, finetune_fc, lora, cp_lora, sena, separate };
// "naive", "joint", "finetune-head", "finetune-fc", "lora", "cp-lora", "sena", "separate"
Method parse_method(const std::string& name);
std::string to_string(Method method);
// lora and cp_lora: the methods with adapters.
bool is_adapter_method(Method method);

// Where adapters go.
struct AdapterPlacement {
  int64_t conv_layers = -1;  // conv layers with adapters, counted from the last; -1 all, 0 none
  bool dense = true;         // LoRA on the hidden dense layers (every Linear but the head)
  bool head = false;         // LoRA also on each new task's head block (the paper's "all three fc")
};
// Comma list of: all (every conv + dense), conv (every conv), last-N (the last N conv),
// fc (dense), head, none. E.g. "all", "last-4,fc", "conv".
AdapterPlacement parse_adapt(const std::string& text);

// Each task's BatchNorm2d under lora and cp_lora.
enum class TaskBatchNorm {
  copy_previous_frozen,  // a copy of the previous task's (the backbone's for the first), frozen (the study)
  copy_trainable,        // a copy of the backbone's (task 0's unless adapt_first_task), trained
  shared,                // no copies: the backbone's, frozen once task 0 is done
};

struct AdapterOptions {
  AdapterPlacement where;
  int64_t rank_conv = 9, rank_fc = 30;
  double alpha = 1.0;
  LoraScaling scaling = LoraScaling::alpha_over_r;
  double dropout = 0;                // on LoRA's input (dense layers)
  bool cp_input_factor = false;      // cp_lora: the input-channel factor D
  TaskBatchNorm batch_norm = TaskBatchNorm::copy_trainable;
};

enum class BranchInit { fresh, copy_previous };

struct ContinualOptions {
  Method method = Method::lora;
  HeadMode head = HeadMode::shared;
  AdapterOptions adapters;
  int64_t finetune_fc_layers = 2;   // finetune_fc: k, the per-task dense layers counting the head
  int64_t sena_shared_layers = -1;  // sena: conv/dense layers in the shared trunk; -1: half, rounded down
  BranchInit branch_init = BranchInit::fresh;  // sena and finetune_fc replicas
  bool adapt_first_task = false;    // lora, cp_lora: task 0 too trains only adapters, BN copies and head
  uint64_t seed = 0;                // heads, adapters and fresh replicas draw from it
  bool initialise = true;           // false: new tensors left uninitialised (counting only)
};

struct ForwardResult {
  Tensor logits;                    // (N, classes of the task) per task; (N, all classes so far) shared
  std::vector<uint8_t> class_mask;  // for cross_entropy / masked_argmax; empty = every logit
  int64_t label_offset = 0;         // task-local label + offset = logit index
};

class ContinualModel {
 public:
  // `network`: a plain model (make_model) whose last Linear is the classifier
  // output; it is replaced by the TaskHead. Throws std::invalid_argument when
  // the network does not suit the method (no Linear, too few layers, ...).
  ContinualModel(std::shared_ptr<Module> network, ContinualOptions options);

  // Adds a task of `classes` classes, sets it up for training as the method
  // says, and makes it the current task. Returns its id (0, 1, ...). Weights
  // loaded before the first add_task (a backbone) are what task 0 starts from.
  int64_t add_task(int64_t classes);
  void set_task(int64_t task);
  int64_t task() const { return task_; }
  int64_t num_tasks() const { return head_->num_tasks(); }
  int64_t classes(int64_t task) const { return head_->classes(task); }
  std::vector<uint8_t> class_mask(int64_t task) const { return head_->class_mask(task); }
  int64_t label_offset(int64_t task) const { return head_->class_offset(task); }

  // x (N,C,H,W) -> logits of the current task, with its mask and label offset.
  ForwardResult forward(const Tensor& x);

  // What the current task trains (requires_grad); give these to the optimiser.
  std::vector<Tensor> trainable_parameters() const { return network_->trainable_parameters(); }
  NamedTensors named_trainable_parameters() const { return network_->named_trainable_parameters(); }
  // Every tensor of every task (PyTorch names for the shared network and task 0).
  NamedTensors state_dict() const { return network_->state_dict(); }
  void load_state_dict(const NamedTensors& tensors, bool allow_unused = false) {
    network_->load_state_dict(tensors, allow_unused);
  }
  std::vector<std::pair<std::string, uint64_t>> counters() const { return network_->named_counters(); }
  void load_counters(const std::vector<std::pair<std::string, uint64_t>>& counters) {
    network_->load_counters(counters);
  }
  ParameterCounts counts() const { return count_parameters(*network_); }

  void train(bool on = true);
  void eval() { train(false); }
  bool is_training() const { return training_; }
  void to(engine::Device device);
  void to(engine::DType dtype);
  engine::Device device() const { return device_; }
  engine::DType dtype() const { return dtype_; }

  // Folds the current task's adapters into their weights for inference, and
  // back (exactly). No task switch while merged.
  void merge_adapters();
  void unmerge_adapters();

  Module& network() const { return *network_; }
  TaskHead& head() const { return *head_; }
  const ContinualOptions& options() const { return options_; }

 private:
  // Gives a module created for a task the model's dtype, device and mode.
  void adopt(Module& module) const;
  void add_adapters(int64_t task);
  void add_replicas(int64_t task);
  std::vector<AdaptableLayer*> adaptable_layers() const;

  std::shared_ptr<Module> network_;
  ContinualOptions options_;
  std::shared_ptr<TaskHead> head_;
  std::vector<Conv2d*> convs_;          // every conv layer, in order
  std::vector<Linear*> dense_;          // every Linear but the head, in order
  std::vector<PerTask*> per_task_;      // replicated layers (BN copies, branches)
  // separate: every replicated layer as it stood before task 0, the start of each later task's copy
  std::vector<std::shared_ptr<Module>> initial_;
  engine::Generator gen_;
  engine::Device device_ = engine::Device::cpu;
  engine::DType dtype_ = engine::DType::f32;
  bool training_ = true;
  int64_t task_ = 0;
};

}  // namespace layers
