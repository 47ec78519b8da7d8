#include "experiments/continual/config.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>

#include "experiments/common/device.h"
#include "experiments/common/tool.h"
#include "layers/continual_model.h"

namespace continual {

const std::vector<std::string>& method_names() {
  static const std::vector<std::string> names = {"naive", "joint", "finetune-head", "finetune-fc", "lora",
                                                 "cp-lora", "sena", "separate", "ewc", "lwf", "replay",
                                                 "packnet", "pnn"};
  return names;
}

bool is_adapter_method(const std::string& method) { return method == "lora" || method == "cp-lora"; }

void add_flags(CLI::App& app, RunConfig& c) {
  app.add_option("--dataset", c.dataset, "fashion-mnist, mnist, kmnist, cifar10, cifar100 or folder")
      ->capture_default_str();
  app.add_option("--data-dir", c.data_dir,
                 "directory of the data set (fashion-mnist: /usr/share/datasets/fashion-mnist by default; "
                 "cifar10/100: the official binary files; folder: DIR/train[/test]/<class>/<image>)");
  app.add_option("--tasks", c.tasks, "number of tasks the classes are split into")->capture_default_str();
  app.add_option("--first-task-classes", c.first_task_classes,
                 "classes in the first task (0: all tasks equal; CUB-200 in the study: 100)")
      ->capture_default_str();
  app.add_option("--class-order", c.class_order,
                 "class order: empty for the benchmark's (label order; CIFAR-100 in 10 tasks: the engine's "
                 "shuffle with seed 1993), 'shuffle' (drawn with --split-seed), 'study' (the study's CIFAR-100 "
                 "order, Avalanche's SplitCIFAR100 with seed 1234; 100-class data sets only) or a comma list "
                 "of labels");
  app.add_option("--split-seed", c.split_seed, "seed of the class shuffle and the validation split")
      ->capture_default_str();
  app.add_option("--validation-fraction", c.validation_fraction,
                 "share of each class's training images held out for validation")
      ->capture_default_str();
  app.add_option("--train-limit", c.train_limit, "training images per task (a seeded random subset), 0 for all; the default keeps the main comparison "
                 "within about ten minutes on 2 cores")
      ->capture_default_str();
  app.add_option("--eval-limit", c.eval_limit, "validation and test images per task, 0 for all (quick runs)")
      ->capture_default_str();
  app.add_option("--augment", c.augment, "random crop and flip: auto (on for RGB data), on, off")
      ->capture_default_str();
  app.add_option("--image-size", c.image_size,
                 "side every image is resized to (bilinear), 0: the data set's own size (folder data sets: 32)")
      ->capture_default_str();
  app.add_option("--normalize", c.normalize,
                 "input normalisation: dataset (mean/std of the run's training images) or imagenet (ImageNet's "
                 "mean/std, for ImageNet-pretrained backbones; RGB data only)")
      ->capture_default_str();
  app.add_option("--arch", c.arch, "network: sena32, tiny, vgg11, vgg13, vgg16, vgg19, vgg*_bn, or a VGG config "
                                   "string such as '64,M,128,M'")
      ->capture_default_str();
  std::string all;
  for (const std::string& m : method_names()) all += (all.empty() ? "" : ", ") + m;
  app.add_option("--method", c.methods, "one method or a comma list: " + all)
      ->delimiter(',')
      ->capture_default_str();
  app.add_option("--rank", c.ranks,
                 "adapter rank of conv layers (lora, cp-lora); a comma list (1,3,9,12) sweeps the ranks: each "
                 "adapter method runs once per rank (cells named METHOD-rR-seedS)")
      ->delimiter(',')
      ->capture_default_str();
  app.add_option("--rank-fc", c.rank_fc, "adapter rank of dense layers")->capture_default_str();
  app.add_option("--alpha", c.alpha, "adapter alpha: the scaling is alpha / rank, or rank / alpha (--scaling)")
      ->capture_default_str();
  app.add_option("--adapt", c.adapt,
                 "where adapters go, a comma list of: all (every conv and dense layer), conv, last-N (the last N "
                 "conv layers), fc (the hidden dense layers), head (also the heads), none")
      ->capture_default_str();
  app.add_option("--init", c.init, ".npz to start the backbone from (e.g. pretrained weights)");
  app.add_flag("--adapt-first-task", c.adapt_first_task,
               "lora, cp-lora: task 0 too trains only its adapters, batch-norm copies and head over the frozen "
               "--init backbone (the study's LoraVGG19), so the backbone never changes; needs --init and a "
               "listed lora or cp-lora (default: off, task 0 trains the whole network)");
  app.add_option("--scaling", c.scaling,
                 "lora, cp-lora: adapter scaling alpha-over-r (loralib) or r-over-alpha (the study's code, with "
                 "--alpha 1) (default: " + std::string(ProtocolDefaults::scaling) + ")");
  app.add_option("--task-bn", c.task_bn,
                 "lora, cp-lora: each task's batch norm: copy-previous-frozen (the study: a copy of the previous "
                 "task's, affine parameters and statistics frozen), copy-trainable (a trained copy of the "
                 "backbone's) or shared (the backbone's, frozen) (default: " +
                     std::string(ProtocolDefaults::task_bn) + ")");
  app.add_option("--branch-init", c.branch_init,
                 "sena, finetune-fc: a new task's branch starts as a copy of the previous task's trained branch "
                 "(copy, the study) or from fresh random weights (fresh) (default: " +
                     std::string(ProtocolDefaults::branch_init) + ")");
  app.add_option("--shared-layers", c.shared_layers,
                 "sena: conv and dense layers in the shared, frozen trunk (default: the first half, rounded down)");
  app.add_option("--finetune-layers", c.finetune_layers,
                 "finetune-fc: dense layers per task, head included: 1 (head only), 2, 3 (the paper's "
                 "finetune-1/2/3) (default: " + std::to_string(ProtocolDefaults::finetune_layers) + ")");
  app.add_option("--ewc-lambda", c.ewc_lambda,
                 "ewc: penalty (lambda / 2) * sum F (theta - theta*)^2 on moving the weights from the last task's")
      ->capture_default_str();
  app.add_option("--ewc-gamma", c.ewc_gamma, "ewc: running Fisher F <- gamma F + F_task, gamma in [0, 1]")
      ->capture_default_str();
  app.add_option("--lwf-alpha", c.lwf_alpha, "lwf: weight of the distillation loss on the old tasks' outputs")
      ->capture_default_str();
  app.add_option("--lwf-temperature", c.lwf_temperature, "lwf: softmax temperature of the soft targets")
      ->capture_default_str();
  app.add_option("--memory", c.memory,
                 "replay: training images kept in memory, class-balanced (reservoir sampling per class)")
      ->capture_default_str();
  app.add_option("--prune", c.prune,
                 "packnet: share of a task's free weights pruned by magnitude (per layer) after it trains, in "
                 "(0, 1); the rest are the task's, frozen for later tasks (default: " +
                     layers::repr_number(ProtocolDefaults::prune) + ")");
  app.add_option("--retrain-epochs", c.retrain_epochs,
                 "packnet: epochs the weights a task keeps retrain after its pruning, 0 for none (default: " +
                     std::to_string(ProtocolDefaults::retrain_epochs) + ")");
  app.add_option("--pnn-width", c.pnn_width,
                 "pnn: every column's conv channels and hidden dense features are --arch's times this factor "
                 "(rounded), so that its growth can be matched to another method's (default: 1)");
  app.add_option("--epochs", c.epochs, "maximum epochs per task")->capture_default_str();
  app.add_option("--patience", c.patience,
                 "early stopping: epochs without a better validation accuracy before a task stops "
                 "(the best epoch's weights are restored)")
      ->capture_default_str();
  app.add_option("--batch", c.batch, "batch size")->capture_default_str();
  app.add_option("--lr", c.lr, "learning rate")->capture_default_str();
  app.add_option("--weight-decay", c.weight_decay, "weight decay")->capture_default_str();
  app.add_option("--optimizer", c.optimizer, "adam, adamw or sgd (momentum 0.9)")->capture_default_str();
  app.add_option("--lr-plateau", c.lr_plateau,
                 "PATIENCE[,FACTOR]: ReduceLROnPlateau on validation accuracy, the rate times FACTOR (default "
                 "0.1) after more than PATIENCE epochs without a relative gain of 1e-4 (the study: 4); "
                 "empty: constant rate (default)");
  app.add_option("--seeds", c.seeds, "comma list of seeds; each seed is one run of every method")
      ->delimiter(',')
      ->capture_default_str();
  app.add_option("--threads", c.threads, "CPU threads (0: all cores)")->capture_default_str();
  app.add_option("--device", c.device, "cpu, cuda (the first GPU) or cuda:N (GPU N)")->capture_default_str();
  app.add_flag("--tf32", c.tf32,
               "with --device cuda or cuda:N: float32 matrix products on TF32 tensor cores (inputs cut to 10 "
               "mantissa bits): faster, less exact");
  app.add_option("--out", c.out, "output directory (results, plots, checkpoints)")->capture_default_str();
  app.add_flag("--resume", c.resume,
               "continue unfinished cells from their last checkpoint (finished cells, those with a result "
               "file in OUT/cells/, are always skipped; delete the file to run one again)");
  app.add_option("--shard", c.shard,
                 "I/N: run only the cells (method x seed) whose index mod N is I; by default read from "
                 "Slurm job arrays or an MPI launch, else all cells");
  app.add_flag("--data-parallel", c.data_parallel,
               "under mpirun -np P: every rank trains the same cells, each on 1/P of every batch, with the "
               "gradients averaged (batch norm and dropout per rank); only rank 0 writes. Cells are then "
               "sharded only by --shard or a Slurm job array");
}

namespace {
[[noreturn]] void bad(const std::string& flag, const std::string& message) {
  throw std::invalid_argument(flag + ": " + message);
}

bool lists_any(const RunConfig& c, std::initializer_list<const char*> methods) {
  for (const char* m : methods)
    if (std::find(c.methods.begin(), c.methods.end(), m) != c.methods.end()) return true;
  return false;
}

// A protocol choice given while no listed method uses it.
void check_applies(const RunConfig& c, bool given, const std::string& flag,
                   std::initializer_list<const char*> methods) {
  if (!given || lists_any(c, methods)) return;
  std::string names;
  for (const char* m : methods) names += (names.empty() ? "" : " or ") + std::string(m);
  bad(flag, "applies to " + names + ", but --method lists none of them");
}

bool one_of(const std::string& value, std::initializer_list<const char*> allowed) {
  for (const char* a : allowed)
    if (value == a) return true;
  return false;
}
}  // namespace

LrPlateau parse_lr_plateau(const std::string& text) {
  LrPlateau plateau;
  const size_t comma = text.find(',');
  const std::string patience = text.substr(0, comma);
  try {
    size_t used = 0;
    plateau.patience = std::stoll(patience, &used);
    if (used != patience.size()) throw std::invalid_argument(patience);
    if (comma != std::string::npos) {
      const std::string factor = text.substr(comma + 1);
      plateau.factor = std::stod(factor, &used);
      if (used != factor.size()) throw std::invalid_argument(factor);
    }
  } catch (const std::exception&) {
    bad("--lr-plateau", "'" + text + "' is not PATIENCE[,FACTOR]");
  }
  if (plateau.patience < 0) bad("--lr-plateau", "patience must be >= 0, got " + std::to_string(plateau.patience));
  if (!(plateau.factor > 0 && plateau.factor < 1)) bad("--lr-plateau", "factor must lie in (0, 1)");
  return plateau;
}

void validate(const RunConfig& c) {
  if (c.tasks < 1) bad("--tasks", "must be at least 1");
  if (c.first_task_classes < 0) bad("--first-task-classes", "must be >= 0");
  tool::require_finite("--validation-fraction", c.validation_fraction);
  if (c.validation_fraction <= 0 || c.validation_fraction >= 1)
    bad("--validation-fraction", "must lie in (0, 1): early stopping needs validation images");
  if (c.train_limit < 0 || c.eval_limit < 0) bad("--train-limit/--eval-limit", "must be >= 0");
  if (c.augment != "auto" && c.augment != "on" && c.augment != "off") bad("--augment", "auto, on or off");
  if (c.methods.empty()) bad("--method", "give at least one method");
  for (const std::string& m : c.methods)
    if (std::find(method_names().begin(), method_names().end(), m) == method_names().end())
      bad("--method", "unknown method '" + m + "'");
  for (size_t i = 0; i < c.methods.size(); ++i)
    if (std::find(c.methods.begin(), c.methods.begin() + i, c.methods[i]) != c.methods.begin() + i)
      bad("--method", "'" + c.methods[i] + "' given twice");
  if (c.seeds.empty()) bad("--seeds", "give at least one seed");
  for (size_t i = 0; i < c.seeds.size(); ++i)
    if (std::find(c.seeds.begin(), c.seeds.begin() + i, c.seeds[i]) != c.seeds.begin() + i)
      bad("--seeds", std::to_string(c.seeds[i]) + " given twice");
  if (c.ranks.empty()) bad("--rank", "give at least one rank");
  for (size_t i = 0; i < c.ranks.size(); ++i) {
    if (c.ranks[i] < 1) bad("--rank", "must be at least 1, got " + std::to_string(c.ranks[i]));
    if (std::find(c.ranks.begin(), c.ranks.begin() + i, c.ranks[i]) != c.ranks.begin() + i)
      bad("--rank", std::to_string(c.ranks[i]) + " given twice");
  }
  if (c.rank_fc < 1) bad("--rank-fc", "must be at least 1");
  tool::require_finite("--alpha", c.alpha);
  if (c.alpha <= 0) bad("--alpha", "must be positive");
  try {
    layers::parse_adapt(c.adapt);
  } catch (const std::invalid_argument& e) {
    bad("--adapt", e.what());
  }
  if (!(c.ewc_lambda >= 0)) bad("--ewc-lambda", "must be >= 0");
  if (!(c.ewc_gamma >= 0 && c.ewc_gamma <= 1)) bad("--ewc-gamma", "must lie in [0, 1]");
  if (!(c.lwf_alpha >= 0)) bad("--lwf-alpha", "must be >= 0");
  if (!(c.lwf_temperature > 0)) bad("--lwf-temperature", "must be positive");
  if (c.memory < 0) bad("--memory", "must be >= 0");
  if (c.pnn_width && !(*c.pnn_width > 0 && std::isfinite(*c.pnn_width)))
    bad("--pnn-width", "must be a positive finite factor, got " + layers::repr_number(*c.pnn_width));
  if (c.epochs < 1) bad("--epochs", "must be at least 1");
  if (c.patience < 1) bad("--patience", "must be at least 1");
  if (c.batch < 1) bad("--batch", "must be at least 1");
  tool::require_finite("--lr", c.lr);
  if (!(c.lr > 0)) bad("--lr", "must be positive");
  tool::require_finite("--weight-decay", c.weight_decay);
  if (c.weight_decay < 0) bad("--weight-decay", "must be >= 0");
  if (c.optimizer != "adam" && c.optimizer != "adamw" && c.optimizer != "sgd")
    bad("--optimizer", "adam, adamw or sgd");
  tool::require_range("--threads", c.threads, 0, tool::kMaxThreads);
  experiments::check_tf32(experiments::parse_device(c.device), c.tf32);
  if (c.image_size != 0 && c.image_size < 8) bad("--image-size", "must be 0 (the data set's size) or at least 8");
  if (!one_of(c.normalize, {"dataset", "imagenet"})) bad("--normalize", "dataset or imagenet");
  if (c.scaling && !one_of(*c.scaling, {"alpha-over-r", "r-over-alpha"}))
    bad("--scaling", "alpha-over-r or r-over-alpha");
  if (c.task_bn && !one_of(*c.task_bn, {"copy-previous-frozen", "copy-trainable", "shared"}))
    bad("--task-bn", "copy-previous-frozen, copy-trainable or shared");
  if (c.branch_init && !one_of(*c.branch_init, {"copy", "fresh"})) bad("--branch-init", "copy or fresh");
  if (c.shared_layers && *c.shared_layers < 1) bad("--shared-layers", "must be at least 1");
  if (c.finetune_layers && *c.finetune_layers < 1) bad("--finetune-layers", "must be at least 1");
  if (c.prune) {
    tool::require_finite("--prune", *c.prune);
    if (!(*c.prune > 0 && *c.prune < 1)) bad("--prune", "must lie in (0, 1), got " + layers::repr_number(*c.prune));
  }
  if (c.retrain_epochs && *c.retrain_epochs < 0)
    bad("--retrain-epochs", "must be >= 0, got " + std::to_string(*c.retrain_epochs));
  if (!c.lr_plateau.empty()) parse_lr_plateau(c.lr_plateau);

  // No flag is silently overridden or ignored: a choice no listed method uses is refused.
  check_applies(c, c.adapt_first_task, "--adapt-first-task", {"lora", "cp-lora"});
  if (c.adapt_first_task && c.init.empty())
    bad("--adapt-first-task", "needs --init: the frozen backbone the adapters of every task sit on");
  check_applies(c, c.scaling.has_value(), "--scaling", {"lora", "cp-lora"});
  check_applies(c, c.task_bn.has_value(), "--task-bn", {"lora", "cp-lora"});
  check_applies(c, c.ranks.size() > 1, "--rank (a list)", {"lora", "cp-lora"});
  check_applies(c, c.branch_init.has_value(), "--branch-init", {"sena", "finetune-fc"});
  check_applies(c, c.shared_layers.has_value(), "--shared-layers", {"sena"});
  check_applies(c, c.finetune_layers.has_value(), "--finetune-layers", {"finetune-fc"});
  check_applies(c, c.prune.has_value(), "--prune", {"packnet"});
  check_applies(c, c.retrain_epochs.has_value(), "--retrain-epochs", {"packnet"});
  check_applies(c, c.pnn_width.has_value(), "--pnn-width", {"pnn"});
  if (!c.init.empty() && lists_any(c, {"pnn"}))
    bad("--init", "pnn builds every column from fresh weights; run it without --init");
  // Known channel and class counts; folder data sets are checked once read (load_task_data).
  const bool grey = one_of(c.dataset, {"fashion-mnist", "mnist", "kmnist"});
  if (c.normalize == "imagenet" && grey)
    bad("--normalize imagenet", "needs RGB images, but --dataset " + c.dataset + " is greyscale");
  if (c.class_order == "study" && c.dataset != "cifar100" && c.dataset != "folder")
    bad("--class-order study", "is CIFAR-100's order of 100 classes, but --dataset is " + c.dataset);
  // One batch of input images as float32 (at most 3 channels; the network's
  // activations are larger still): sizes no machine holds are refused here,
  // before the data set is read. Without --image-size, images are at most 32x32.
  const double side = static_cast<double>(c.image_size != 0 ? c.image_size : 32);
  tool::require_memory("--batch/--image-size", 4.0 * 3 * static_cast<double>(c.batch) * side * side,
                       "a batch of input images");
}

nlohmann::json setting_json(const RunConfig& c) {
  nlohmann::json j = {{"dataset", c.dataset},
          {"data_dir", c.data_dir.string()},
          {"tasks", c.tasks},
          {"first_task_classes", c.first_task_classes},
          {"class_order", c.class_order},
          {"split_seed", c.split_seed},
          {"validation_fraction", c.validation_fraction},
          {"train_limit", c.train_limit},
          {"eval_limit", c.eval_limit},
          {"augment", c.augment},
          {"image_size", c.image_size},
          {"arch", c.arch},
          {"rank", c.ranks.size() == 1 ? nlohmann::json(c.ranks.front()) : nlohmann::json(c.ranks)},
          {"rank_fc", c.rank_fc},
          {"alpha", c.alpha},
          {"adapt", c.adapt},
          {"init", c.init.string()},
          {"ewc_lambda", c.ewc_lambda},
          {"ewc_gamma", c.ewc_gamma},
          {"lwf_alpha", c.lwf_alpha},
          {"lwf_temperature", c.lwf_temperature},
          {"memory", c.memory},
          {"epochs", c.epochs},
          {"patience", c.patience},
          {"batch", c.batch},
          {"lr", c.lr},
          {"weight_decay", c.weight_decay},
          {"optimizer", c.optimizer},
          // The kind, not the GPU's number: shards on cuda:0 and cuda:1 fill one --out.
          {"device", engine::to_string(experiments::parse_device(c.device).device)}};
  // The protocol choices join the setting only where given, so that cells of
  // runs from before they existed stay valid for --resume.
  auto add = [&](const char* key, const auto& value, bool given) {
    if (given) j[key] = value;
  };
  add("normalize", c.normalize, c.normalize != "dataset");
  add("adapt_first_task", c.adapt_first_task, c.adapt_first_task);
  add("scaling", c.scaling.value_or(""), c.scaling.has_value());
  add("task_bn", c.task_bn.value_or(""), c.task_bn.has_value());
  add("branch_init", c.branch_init.value_or(""), c.branch_init.has_value());
  add("shared_layers", c.shared_layers.value_or(0), c.shared_layers.has_value());
  add("finetune_layers", c.finetune_layers.value_or(0), c.finetune_layers.has_value());
  add("prune", c.prune.value_or(0), c.prune.has_value());
  add("retrain_epochs", c.retrain_epochs.value_or(0), c.retrain_epochs.has_value());
  add("lr_plateau", c.lr_plateau, !c.lr_plateau.empty());
  add("pnn_width", c.pnn_width.value_or(0), c.pnn_width.has_value());
  add("tf32", c.tf32, c.tf32);
  return j;
}

nlohmann::json config_json(const RunConfig& c) {
  nlohmann::json j = setting_json(c);
  j["methods"] = c.methods;
  j["seeds"] = c.seeds;
  j["threads"] = c.threads;
  j["data_parallel"] = c.data_parallel;
  j["out"] = c.out.string();
  const std::string scaling = c.scaling.value_or(ProtocolDefaults::scaling);
  j["adapter_scaling"] = scaling == "alpha-over-r" ? "alpha / rank" : "rank / alpha";
  j["adapt_first_task"] = c.adapt_first_task;
  j["task_bn"] = c.task_bn.value_or(ProtocolDefaults::task_bn);
  j["branch_init"] = c.branch_init.value_or(ProtocolDefaults::branch_init);
  j["shared_layers"] = c.shared_layers ? nlohmann::json(*c.shared_layers) : nlohmann::json("half");
  j["finetune_layers"] = c.finetune_layers.value_or(ProtocolDefaults::finetune_layers);
  j["prune"] = c.prune.value_or(ProtocolDefaults::prune);
  j["retrain_epochs"] = c.retrain_epochs.value_or(ProtocolDefaults::retrain_epochs);
  j["normalize"] = c.normalize;
  j["lr_plateau"] = c.lr_plateau;
  j["pnn_width"] = c.pnn_width.value_or(1.0);
  j["device"] = c.device;  // as given: cuda:1 says which GPU
  j["tf32"] = c.tf32;
  return j;
}

}  // namespace continual
