#include "experiments/continual/methods.h"

#include <set>

#include "engine/npz.h"
#include "experiments/common/device.h"
#include "experiments/continual/learners/ewc.h"
#include "experiments/continual/learners/lwf.h"
#include "experiments/continual/learners/packnet.h"
#include "experiments/continual/learners/pnn.h"
#include "experiments/continual/learners/replay.h"
#include "experiments/continual/trainer.h"
#include "layers/continual_model.h"
#include "layers/models.h"

namespace continual {

namespace {

// "features.1.running_mean" -> "features.1"
std::string module_of(const std::string& tensor_name) {
  const size_t dot = tensor_name.rfind('.');
  return dot == std::string::npos ? "" : tensor_name.substr(0, dot);
}

enum Purpose : uint64_t { kNetwork = 3, kTasks = 4, kReplay = 5 };

class ContinualModelLearner final : public Learner {
 public:
  ContinualModelLearner(std::shared_ptr<layers::Module> network, const layers::ContinualOptions& options,
                        engine::Device device)
      : model_(std::move(network), options), device_(device) {}

  layers::ContinualModel& model() { return model_; }

  std::vector<engine::Tensor> begin_task(int64_t task, const std::vector<int64_t>& classes) override {
    const layers::ParameterCounts before = model_.counts();
    // What was there before the first task (the network) is the first task's too.
    std::set<std::string> before_names;
    if (task > 0)
      for (const auto& [name, tensor] : model_.state_dict()) before_names.insert(name);
    const int64_t added = model_.add_task(static_cast<int64_t>(classes.size()));
    if (added != task)
      throw std::logic_error("learner: task " + std::to_string(task) + " begun as task " + std::to_string(added));
    model_.to(device_);
    std::vector<std::string> names;
    for (const auto& [name, tensor] : model_.state_dict())
      if (!before_names.contains(name)) names.push_back(name);
    task_names_.push_back(std::move(names));
    const layers::ParameterCounts after = model_.counts();
    // Growth of what is stored; the first task stores (and trains) everything.
    new_params_.push_back(task == 0 ? NewParams{after.features, after.classifier}
                                    : NewParams{after.features - before.features,
                                                after.classifier - before.classifier});
    return model_.trainable_parameters();
  }

  NewParams new_params(int64_t task) const override { return new_params_.at(task); }

  engine::Tensor forward(const engine::Tensor& images, int64_t task, bool training) override {
    model_.set_task(task);
    model_.train(training);
    return model_.forward(images).logits;
  }

  std::vector<uint8_t> class_mask(int64_t task) const override { return model_.class_mask(task); }
  std::vector<uint8_t> training_mask(int64_t task) const override {
    if (!trains_on_all_seen_tasks()) return class_mask(task);
    return std::vector<uint8_t>(model_.class_mask(task).size(), 1);  // every class seen so far
  }
  bool trains_on_all_seen_tasks() const override { return model_.options().method == layers::Method::joint; }
  // Shared paths: naive and joint (one network), finetune-head (per-task head
  // blocks only) and finetune-fc with k = 1 (the head alone is per task).
  bool path_depends_on_task() const override {
    switch (model_.options().method) {
      case layers::Method::naive:
      case layers::Method::joint:
      case layers::Method::finetune_head: return false;
      case layers::Method::finetune_fc: return model_.options().finetune_fc_layers > 1;
      case layers::Method::lora:
      case layers::Method::cp_lora:
      case layers::Method::sena:
      case layers::Method::separate: return true;
    }
    return true;
  }

  engine::NamedTensors state() override { return model_.state_dict(); }
  // The trainable parameters and the buffers of their modules: a layer's
  // running statistics change only while its weights train (batch_norm.cpp).
  engine::NamedTensors trained_state() override {
    engine::NamedTensors tensors = model_.named_trainable_parameters();
    std::set<std::string> trained_modules;
    for (const auto& [name, tensor] : tensors) trained_modules.insert(module_of(name));
    for (auto& buffer : model_.network().named_buffers())
      if (trained_modules.contains(module_of(buffer.first))) tensors.push_back(std::move(buffer));
    return tensors;
  }
  engine::NamedTensors task_state(int64_t task) override {
    const std::vector<std::string>& names = task_names_.at(static_cast<size_t>(task));
    const std::set<std::string> wanted(names.begin(), names.end());
    engine::NamedTensors tensors;
    for (auto& entry : model_.state_dict())
      if (wanted.contains(entry.first)) tensors.push_back(std::move(entry));
    return tensors;
  }
  std::vector<std::pair<std::string, uint64_t>> counters() const override { return model_.counters(); }
  void load_counters(const std::vector<std::pair<std::string, uint64_t>>& counters) override {
    model_.load_counters(counters);
  }

 private:
  layers::ContinualModel model_;
  engine::Device device_;
  std::vector<NewParams> new_params_;
  std::vector<std::vector<std::string>> task_names_;  // per task: the state_dict names it added
};

}  // namespace

layers::ContinualModel& continual_model(Learner& learner) {
  if (auto* built = dynamic_cast<ContinualModelLearner*>(&learner)) return built->model();
  // ewc, lwf, replay and packnet add their method to the naive network's learner.
  if (auto* wrapped = dynamic_cast<WrappedLearner*>(&learner)) return continual_model(wrapped->base());
  throw std::logic_error("continual_model: a learner without a ContinualModel (pnn's columns)");
}

std::unique_ptr<Learner> make_learner(const RunConfig& c, const std::string& method, const TaskData& data,
                                      uint64_t seed, int64_t rank) {
  // The regularisation, distillation and rehearsal families act on the naive network.
  if (method == "ewc") return std::make_unique<Ewc>(make_learner(c, "naive", data, seed, rank), c.ewc_lambda, c.ewc_gamma);
  if (method == "lwf")
    return std::make_unique<Lwf>([&c, &data, seed, rank] { return make_learner(c, "naive", data, seed, rank); }, c.lwf_alpha,
                                 c.lwf_temperature);
  if (method == "replay")
    return std::make_unique<Replay>(make_learner(c, "naive", data, seed, rank), data, c.memory, task_stream(seed, kReplay, 0));
  // The sub-network family shares the naive network's weights out among the tasks.
  if (method == "packnet") {
    auto naive = make_learner(c, "naive", data, seed, rank);
    layers::ContinualModel& model = continual_model(*naive);
    return std::make_unique<PackNet>(std::move(naive), model, c.prune.value_or(ProtocolDefaults::prune),
                                     c.retrain_epochs.value_or(ProtocolDefaults::retrain_epochs));
  }
  const datasets::ImageDataset& train = data.data.train;
  const layers::InputShape input{train.height, train.width, train.channels};
  const int64_t first_classes = static_cast<int64_t>(data.split.tasks.front().classes.size());
  // The dynamic family: columns of --arch's layout, drawn from the network's stream.
  if (method == "pnn")
    return std::make_unique<Pnn>(*layers::make_model(c.arch, input, first_classes, {0, false}), c.pnn_width.value_or(1.0),
                                 task_stream(seed, kNetwork, 0),
                                 experiments::parse_device(c.device).device);
  auto network = layers::make_model(c.arch, input, first_classes, {task_stream(seed, kNetwork, 0), true});

  layers::ContinualOptions options;
  options.method = layers::parse_method(method);
  options.head = layers::HeadMode::shared;
  options.adapters.where = layers::parse_adapt(c.adapt);
  options.adapters.rank_conv = rank == 0 ? c.ranks.front() : rank;
  options.adapters.rank_fc = c.rank_fc;
  options.adapters.alpha = c.alpha;
  options.adapters.scaling = c.scaling.value_or(ProtocolDefaults::scaling) == "alpha-over-r"
                                 ? layers::LoraScaling::alpha_over_r
                                 : layers::LoraScaling::r_over_alpha;
  const std::string task_bn = c.task_bn.value_or(ProtocolDefaults::task_bn);
  options.adapters.batch_norm = task_bn == "copy-previous-frozen" ? layers::TaskBatchNorm::copy_previous_frozen
                                : task_bn == "copy-trainable"     ? layers::TaskBatchNorm::copy_trainable
                                                                  : layers::TaskBatchNorm::shared;
  options.adapt_first_task = c.adapt_first_task && layers::is_adapter_method(options.method);
  options.branch_init = c.branch_init.value_or(ProtocolDefaults::branch_init) == "copy"
                            ? layers::BranchInit::copy_previous
                            : layers::BranchInit::fresh;
  options.sena_shared_layers = c.shared_layers.value_or(-1);
  options.finetune_fc_layers = c.finetune_layers.value_or(ProtocolDefaults::finetune_layers);
  options.seed = task_stream(seed, kTasks, 0);
  const engine::Device device = experiments::parse_device(c.device).device;
  auto learner = std::make_unique<ContinualModelLearner>(network, options, device);
  if (!c.init.empty()) {
    // The network's classifier output is the task head now (no blocks yet), so
    // the file's own head is skipped; every other tensor must match exactly.
    layers::load_npz_state_dict(learner->model().network(), c.init, layers::FileHead::skip);
  }
  return learner;
}

}  // namespace continual
