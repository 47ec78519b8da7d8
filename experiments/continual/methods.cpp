#include "experiments/continual/methods.h"

#include "engine/npz.h"
#include "experiments/continual/trainer.h"
#include "layers/continual_model.h"
#include "layers/models.h"

namespace continual {

namespace {

enum Purpose : uint64_t { kNetwork = 3, kTasks = 4 };

class ContinualModelLearner final : public Learner {
 public:
  ContinualModelLearner(std::shared_ptr<layers::Module> network, const layers::ContinualOptions& options,
                        engine::Device device)
      : model_(std::move(network), options), device_(device) {}

  layers::ContinualModel& model() { return model_; }

  std::vector<engine::Tensor> begin_task(int64_t task, const std::vector<int64_t>& classes) override {
    const layers::ParameterCounts before = model_.counts();
    const int64_t added = model_.add_task(static_cast<int64_t>(classes.size()));
    if (added != task)
      throw std::logic_error("learner: task " + std::to_string(task) + " begun as task " + std::to_string(added));
    model_.to(device_);
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

  engine::NamedTensors state() override { return model_.state_dict(); }
  std::vector<std::pair<std::string, uint64_t>> counters() const override { return model_.counters(); }
  void load_counters(const std::vector<std::pair<std::string, uint64_t>>& counters) override {
    model_.load_counters(counters);
  }

 private:
  layers::ContinualModel model_;
  engine::Device device_;
  std::vector<NewParams> new_params_;
};

}  // namespace

std::unique_ptr<Learner> make_learner(const RunConfig& c, const std::string& method, const TaskData& data,
                                      uint64_t seed, int64_t rank) {
  const datasets::ImageDataset& train = data.data.train;
  const layers::InputShape input{train.height, train.width, train.channels};
  const int64_t first_classes = static_cast<int64_t>(data.split.tasks.front().classes.size());
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
  const engine::Device device = c.device == "cuda" ? engine::Device::cuda : engine::Device::cpu;
  auto learner = std::make_unique<ContinualModelLearner>(network, options, device);
  if (!c.init.empty()) {
    // The network's classifier output is the task head now (no blocks yet), so
    // the file's own head is skipped; every other tensor must match exactly.
    layers::load_npz_state_dict(learner->model().network(), c.init, layers::FileHead::skip);
  }
  return learner;
}

}  // namespace continual
