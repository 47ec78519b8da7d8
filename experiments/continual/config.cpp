#include "experiments/continual/config.h"

#include <algorithm>
#include <stdexcept>

#include "layers/continual_model.h"

namespace continual {

const std::vector<std::string>& method_names() {
  static const std::vector<std::string> names = {"naive", "joint", "finetune-head", "finetune-fc",
                                                 "lora",  "cp-lora", "sena",  "ewc", "lwf",  "replay"};
  return names;
}

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
                 "class order: empty for the benchmark's (label order; CIFAR-100 shuffled with seed 1993), "
                 "'shuffle' (drawn with --split-seed) or a comma list of labels");
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
  app.add_option("--image-size", c.image_size, "folder data sets: side the images are resized to")
      ->capture_default_str();
  app.add_option("--arch", c.arch, "network: sena32, tiny, vgg11, vgg13, vgg16, vgg19, vgg*_bn, or a VGG config "
                                   "string such as '64,M,128,M'")
      ->capture_default_str();
  std::string all;
  for (const std::string& m : method_names()) all += (all.empty() ? "" : ", ") + m;
  app.add_option("--method", c.methods, "one method or a comma list: " + all)
      ->delimiter(',')
      ->capture_default_str();
  app.add_option("--rank", c.rank, "adapter rank of conv layers (lora, cp-lora)")->capture_default_str();
  app.add_option("--rank-fc", c.rank_fc, "adapter rank of dense layers")->capture_default_str();
  app.add_option("--alpha", c.alpha, "adapter scaling is alpha / rank (loralib's convention)")
      ->capture_default_str();
  app.add_option("--adapt", c.adapt,
                 "where adapters go, a comma list of: all (every conv and dense layer), conv, last-N (the last N "
                 "conv layers), fc (the hidden dense layers), head (also the heads), none")
      ->capture_default_str();
  app.add_option("--init", c.init, ".npz to start the backbone from (e.g. pretrained weights)");
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
  app.add_option("--epochs", c.epochs, "maximum epochs per task")->capture_default_str();
  app.add_option("--patience", c.patience,
                 "early stopping: epochs without a better validation accuracy before a task stops "
                 "(the best epoch's weights are restored)")
      ->capture_default_str();
  app.add_option("--batch", c.batch, "batch size")->capture_default_str();
  app.add_option("--lr", c.lr, "learning rate")->capture_default_str();
  app.add_option("--weight-decay", c.weight_decay, "weight decay")->capture_default_str();
  app.add_option("--optimizer", c.optimizer, "adam, adamw or sgd (momentum 0.9)")->capture_default_str();
  app.add_option("--seeds", c.seeds, "comma list of seeds; each seed is one run of every method")
      ->delimiter(',')
      ->capture_default_str();
  app.add_option("--threads", c.threads, "CPU threads (0: all cores)")->capture_default_str();
  app.add_option("--device", c.device, "cpu or cuda")->capture_default_str();
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
}  // namespace

void validate(const RunConfig& c) {
  if (c.tasks < 1) bad("--tasks", "must be at least 1");
  if (c.first_task_classes < 0) bad("--first-task-classes", "must be >= 0");
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
  if (c.rank < 1 || c.rank_fc < 1) bad("--rank/--rank-fc", "must be at least 1");
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
  if (c.epochs < 1) bad("--epochs", "must be at least 1");
  if (c.patience < 1) bad("--patience", "must be at least 1");
  if (c.batch < 1) bad("--batch", "must be at least 1");
  if (!(c.lr > 0)) bad("--lr", "must be positive");
  if (c.weight_decay < 0) bad("--weight-decay", "must be >= 0");
  if (c.optimizer != "adam" && c.optimizer != "adamw" && c.optimizer != "sgd")
    bad("--optimizer", "adam, adamw or sgd");
  if (c.threads < 0) bad("--threads", "must be >= 0");
  if (c.device != "cpu" && c.device != "cuda") bad("--device", "cpu or cuda");
  if (c.image_size < 8) bad("--image-size", "must be at least 8");
}

nlohmann::json setting_json(const RunConfig& c) {
  return {{"dataset", c.dataset},
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
          {"rank", c.rank},
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
          {"device", c.device}};
}

nlohmann::json config_json(const RunConfig& c) {
  nlohmann::json j = setting_json(c);
  j["methods"] = c.methods;
  j["seeds"] = c.seeds;
  j["threads"] = c.threads;
  j["data_parallel"] = c.data_parallel;
  j["out"] = c.out.string();
  j["adapter_scaling"] = "alpha / rank";
  return j;
}

}  // namespace continual
