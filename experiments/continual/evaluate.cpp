#include "experiments/continual/evaluate.h"

#include <algorithm>
#include <map>
#include <memory>
#include <stdexcept>

#include "engine/io.h"
#include "experiments/common/build_info.h"
#include "experiments/common/device.h"
#include "experiments/continual/cell_result.h"
#include "experiments/continual/checkpoint.h"
#include "experiments/continual/merge.h"
#include "experiments/continual/methods.h"
#include "experiments/continual/task_data.h"
#include "experiments/continual/trainer.h"

namespace continual {

namespace fs = std::filesystem;
using nlohmann::json;

RunConfig config_from_setting(const json& setting, std::vector<std::string>& unknown) {
  CLI::App app;
  RunConfig config;
  add_flags(app, config);
  app.allow_extras();
  std::vector<std::string> args;  // the command line this setting stands for
  for (const auto& [key, value] : setting.items()) {
    std::string flag = "--" + key;
    std::replace(flag.begin(), flag.end(), '_', '-');
    if (value.is_boolean()) {
      if (value.get<bool>()) args.push_back(flag);
    } else {
      args.push_back(flag);
      for (const json& element : value.is_array() ? value : json::array({value}))
        args.push_back(element.is_string() ? element.get<std::string>() : element.dump());
    }
  }
  std::reverse(args.begin(), args.end());  // CLI11 takes a vector in reverse order
  try {
    app.parse(args);
  } catch (const CLI::ParseError& e) {
    throw std::runtime_error(std::string("the run's setting does not parse: ") + e.what());
  }
  unknown = app.remaining();
  return config;
}

namespace {

struct FinishedCell {
  std::string name;
  Cell cell;
  CellResult result;
};

// A finished run as `continual` recorded it: its sweep, configuration and
// finished cells, every one with all its task files.
struct KeptRun {
  SweepRecord record;
  RunConfig config;
  std::vector<FinishedCell> finished;
  engine::Device device = engine::Device::cpu;
};

KeptRun read_kept_run(const fs::path& out_dir, const std::string& context, std::ostream& log) {
  KeptRun run{read_sweep_record(out_dir), {}, {}};
  std::vector<std::string> unknown;
  RunConfig& c = run.config = config_from_setting(run.record.setting, unknown);
  if (!unknown.empty()) {
    std::string list;
    for (const std::string& u : unknown) list += " " + u;
    log << context << ": the run was made by another version of continual (settings this build does not know:"
        << list << "); going on with the rest\n";
  }
  c.out = out_dir;
  c.init.clear();  // every weight comes from the kept models
  try {
    validate(c);
  } catch (const std::invalid_argument& e) {
    throw std::runtime_error(context + ": the run's setting is not valid for this build: " + e.what());
  }
  for (const Cell& cell : run.record.cells) {
    const std::string name = cell_name(cell.method, cell.seed);
    std::optional<CellResult> result = read_cell_file(cell_file(out_dir, name), run.record.setting);
    if (!result) continue;
    if (!fs::is_directory(model_dir(out_dir, name)))
      throw std::runtime_error(context + ": cell " + name + " has no kept models (" +
                               model_dir(out_dir, name).string() + " is missing; runs before kept models had none)");
    for (int64_t t = 1; t <= c.tasks; ++t)
      if (!fs::is_regular_file(task_model_file(out_dir, name, t)))
        throw std::runtime_error(context + ": " + task_model_file(out_dir, name, t).string() + " is missing");
    // Models of another commit still load when their names and shapes match;
    // their numbers then need not equal the run's bit for bit.
    const std::string made_by = result->provenance.value("commit", std::string("unknown"));
    if (made_by != experiments::build_info().commit)
      log << context << ": cell " << name << " was made by commit " << made_by << ", this build is "
          << experiments::build_info().commit << "; evaluating it all the same\n";
    run.finished.push_back({name, cell, std::move(*result)});
  }
  if (run.finished.empty()) throw std::runtime_error(context + ": no finished cell (cells/*.json) to evaluate");
  try {
    run.device = experiments::use_device(c.device, c.tf32);
  } catch (const std::runtime_error& e) {
    throw std::runtime_error(context + ": the run used " + e.what());
  }
  return run;
}

// The run's data, checked against what the run recorded.
TaskData read_run_data(const KeptRun& run, const std::string& context, std::ostream& log) {
  const RunConfig& c = run.config;
  log << "reading " << c.dataset << "...\n" << std::flush;
  TaskData data = load_task_data(c);
  const json& shape = run.record.dataset.at("image_shape");
  if (data.identity.at("image_shape") != shape)
    throw std::runtime_error(context + ": the data (" + c.dataset + " in '" + c.data_dir.string() +
                             "') have images of shape " + data.identity.at("image_shape").dump() +
                             " (C, H, W), the run's had " + shape.dump());
  if (data.identity != run.record.dataset)
    log << context << ": note: the data differ from the run's (sweep.json's \"dataset\"); accuracies may differ\n";
  return data;
}

}  // namespace

std::vector<EvaluatedCell> evaluate_run(const fs::path& out_dir, std::ostream& log) {
  const std::string context = "evaluate " + out_dir.string();
  const KeptRun run = read_kept_run(out_dir, context, log);
  const RunConfig& c = run.config;
  const TaskData data = read_run_data(run, context, log);
  const int64_t tasks = c.tasks;
  const engine::Device device = run.device;
  const std::vector<FinishedCell>& finished = run.finished;

  std::vector<EvaluatedCell> evaluated;
  for (const FinishedCell& f : finished) {
    auto learner = make_learner(c, f.cell.method, data, f.cell.seed);
    restore_finished_tasks(*learner, data, out_dir, f.name, tasks);
    EvaluatedCell e{f.name, {}, f.result.accuracy_matrix.back(), {}, f.result.class_il_acc,
                    f.result.class_il_task_inferred_acc};
    for (int64_t t = 0; t < tasks; ++t) e.accuracy.push_back(task_accuracy(*learner, data, t, device));
    e.class_incremental = class_incremental_accuracy(*learner, data, device);
    const ClassIncrementalAccuracy& il = e.class_incremental;
    log << f.name << ": " << (e.identical() ? "equal to the run's last accuracy row bit for bit"
                                            : "DIFFERS from the run's last accuracy row")
        << "; without the task id: class-IL " << (il.all_classes ? std::to_string(*il.all_classes) : "n/a")
        << ", task-inferred " << std::to_string(il.task_inferred) << "\n";
    evaluated.push_back(std::move(e));
  }

  json cells = json::array();
  const auto or_null = [](const std::optional<double>& v) { return v ? json(*v) : json(nullptr); };
  for (const EvaluatedCell& e : evaluated)
    cells.push_back({{"cell", e.cell},
                     {"accuracy", e.accuracy},
                     {"recorded", e.recorded},
                     {"identical", e.identical()},
                     {"class_il_acc", or_null(e.class_incremental.all_classes)},
                     {"class_il_task_inferred_acc", e.class_incremental.task_inferred},
                     {"recorded_class_il_acc", or_null(e.recorded_class_il_acc)},
                     {"recorded_class_il_task_inferred_acc", or_null(e.recorded_class_il_task_inferred_acc)}});
  engine::write_file_atomic(out_dir / "evaluation.json",
                            json{{"split", data.eval_split()}, {"cells", cells}}.dump(1) + "\n");
  return evaluated;
}

TaskNetwork task_network(const fs::path& out_dir, const std::string& cell, int64_t task_number, std::ostream& log) {
  const std::string context = "merge " + out_dir.string();
  const KeptRun run = read_kept_run(out_dir, context, log);
  const auto found = std::find_if(run.finished.begin(), run.finished.end(),
                                  [&](const FinishedCell& f) { return f.name == cell; });
  if (found == run.finished.end()) {
    std::string names;
    for (const FinishedCell& f : run.finished) names += " " + f.name;
    throw std::runtime_error(context + ": no finished cell '" + cell + "' (finished:" + names + ")");
  }
  if (task_number < 1 || task_number > run.config.tasks)
    throw std::runtime_error(context + ": task " + std::to_string(task_number) + " of a run of " +
                             std::to_string(run.config.tasks) + " tasks (counted from 1)");
  // Task t's network is no plain network of --arch under these two methods.
  const std::string& method = found->cell.method;
  if (method == "packnet" || method == "pnn")
    throw std::runtime_error(context + ": cell '" + cell + "' is a " + method + " run: task " +
                             std::to_string(task_number) + "'s network is " +
                             (method == "packnet" ? "the shared weights masked to tasks 1.." + std::to_string(task_number)
                                                  : "column " + std::to_string(task_number) +
                                                        " fed by the earlier columns through its laterals") +
                             ", not one --arch network; continual evaluate " + out_dir.string() + " re-evaluates it");
  const TaskData data = read_run_data(run, context, log);
  auto learner = make_learner(run.config, method, data, found->cell.seed);
  restore_finished_tasks(*learner, data, out_dir, cell, run.config.tasks);

  const int64_t task = task_number - 1;
  layers::ContinualModel& model = continual_model(*learner);
  model.set_task(task);
  model.merge_adapters();
  std::map<std::string, engine::Tensor> kept;
  for (const auto& [name, tensor] : model.state_dict()) kept[name] = tensor;

  const datasets::ImageDataset& train = data.data.train;
  TaskNetwork network{run.config.arch, {train.height, train.width, train.channels}, model.classes(task), {}};
  auto plain = layers::make_model(network.arch, network.input, network.classes, {0, false});
  // A replicated layer's plain name "<layer>.<tensor>" is task 0's; task t's
  // copy is "<layer>.tasks.<t>.<tensor>" (layers/per_task.h).
  for (const auto& [name, tensor] : plain->state_dict()) {
    std::string source = name;
    for (size_t dot = name.rfind('.'); task > 0 && dot != std::string::npos && dot > 0;
         dot = name.rfind('.', dot - 1)) {
      const std::string replica = name.substr(0, dot) + ".tasks." + std::to_string(task) + name.substr(dot);
      if (kept.contains(replica)) {
        source = replica;
        break;
      }
    }
    const auto value = kept.find(source);
    if (value == kept.end() || value->second.shape() != tensor.shape())
      throw std::logic_error(context + ": " + cell + " has no tensor " + source + " of shape " +
                             engine::to_string(tensor.shape()) + " for the plain network's " + name);
    network.tensors.push_back({name, value->second.to(engine::Device::cpu).clone()});
  }
  return network;
}

}  // namespace continual
