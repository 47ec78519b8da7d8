// The runner's bookkeeping, without training: metric formulas on hand-made
// accuracy matrices, cell files, aggregation over seeds, results.json layout
// and provenance, summary and CSVs (tasks from 1, a spread only with two seeds
// or more), the per-epoch log, shard selection, figures (PNG, SVG, PDF) and
// the progress display.
#define BOOST_TEST_MODULE continual_report
#include <boost/test/unit_test.hpp>

#include <unistd.h>

#include <algorithm>
#include <array>
#include <cstdio>
#include <cmath>
#include <filesystem>
#include <map>
#include <sstream>

#include "engine/cpu/isa.h"
#include "engine/backend.h"
#include "engine/io.h"
#include "experiments/common/build_info.h"
#include "experiments/common/cli.h"
#include "experiments/common/device.h"
#include "experiments/common/provenance.h"
#include "experiments/continual/aggregate.h"
#include "experiments/continual/cell_result.h"
#include "experiments/continual/epoch_log.h"
#include "experiments/continual/figures.h"
#include "experiments/continual/metrics.h"
#include "experiments/continual/plot.h"
#include "experiments/continual/progress.h"
#include "experiments/continual/report.h"
#include "experiments/continual/sweep.h"
#include "tests/temp_dir.h"

using namespace continual;
using boost::test_tools::tolerance;
namespace fs = std::filesystem;

namespace {

using testing::TempDir;

// Three tasks; task 0 goes 0.9 -> 0.7 -> 0.5, task 1 0.8 -> 0.85 (improves).
const AccuracyMatrix kForgetful = {{0.9}, {0.7, 0.8}, {0.5, 0.85, 0.95}};

CellResult make_cell(const std::string& method, uint64_t seed, AccuracyMatrix r) {
  CellResult c;
  c.method = method;
  c.seed = seed;
  c.accuracy_split = "test";
  c.accuracy_matrix = r;
  c.validation_matrix = r;
  // Task 1 keeps 7 values beside the network, task 2 3000 bytes of data.
  c.params = {100, {100, 10, 10}, {60, 5, 5}, {40, 5, 5}, 120, 70, 50, {}, {0, 7, 0}, {0, 0, 3000}, 3508};
  c.epochs_per_task = {3, 4, 5};
  c.seconds_per_task = {1.5, 2.5, 3.5};
  // Training seconds per epoch: task 1 1.5, task 2 3, task 3 6; 12 s over 4 epochs = 3 per epoch.
  c.curves = {{{1.0, 0.5}, {0.6, 0.9}, 2, {1.0, 2.0}}, {{0.8}, {0.8}, 1, {3.0}}, {{0.7}, {0.95}, 1, {6.0}}};
  c.peak_memory_bytes = 1 << 20;
  // FWT: ((0.7 - 0.5) + (0.6 - 0.5)) / 2 = 0.15; task 1's entry does not count.
  c.accuracy_before_training = {0.1, 0.7, 0.6};
  c.untrained_accuracy = {0.1, 0.5, 0.5};
  c.class_il_acc = 0.6;
  c.class_il_task_inferred_acc = 0.7;
  return c;
}

// Well-formed XML as far as a figure needs: every element closed in order,
// attributes quoted, comments, declarations and CDATA skipped.
bool well_formed_xml(const std::string& text) {
  std::vector<std::string> open;
  size_t i = text.find('<');
  if (i == std::string::npos) return false;
  while (i != std::string::npos) {
    if (text.compare(i, 4, "<!--") == 0) {
      i = text.find("-->", i);
      if (i == std::string::npos) return false;
    } else if (text.compare(i, 9, "<![CDATA[") == 0) {
      i = text.find("]]>", i);
      if (i == std::string::npos) return false;
    } else if (text.compare(i, 2, "<?") == 0 || text.compare(i, 2, "<!") == 0) {
      i = text.find('>', i);
      if (i == std::string::npos) return false;
    } else {
      // Find the tag's end outside quoted attribute values.
      size_t j = i + 1;
      char quote = 0;
      for (; j < text.size() && (quote || text[j] != '>'); ++j)
        if (quote ? text[j] == quote : (text[j] == '"' || text[j] == '\''))
          quote = quote ? 0 : text[j];
      if (j == text.size()) return false;
      const std::string tag = text.substr(i + 1, j - i - 1);
      const bool closing = tag.starts_with("/"), empty = tag.ends_with("/");
      const std::string name = tag.substr(closing, tag.find_first_of(" \t\n/>", closing) - closing);
      if (name.empty()) return false;
      if (closing) {
        if (open.empty() || open.back() != name) return false;
        open.pop_back();
      } else if (!empty) {
        open.push_back(name);
      }
      i = j;
    }
    i = text.find('<', i);
  }
  return open.empty();
}

}  // namespace

BOOST_AUTO_TEST_CASE(metrics_on_a_hand_made_matrix) {
  BOOST_TEST(average_accuracy(kForgetful) == (0.5 + 0.85 + 0.95) / 3, tolerance(1e-12));
  // BWT: ((0.5 - 0.9) + (0.85 - 0.8)) / 2
  BOOST_TEST(backward_transfer(kForgetful) == (-0.4 + 0.05) / 2, tolerance(1e-12));
  // Forgetting: task 0 best 0.9 -> 0.5 is 0.4; task 1 best 0.8 (row 1 only) -> 0.85 is -0.05.
  BOOST_TEST(forgetting(kForgetful) == (0.4 - 0.05) / 2, tolerance(1e-12));
  // The best earlier row is not always the diagonal: task 0 peaks after task 1.
  const AccuracyMatrix late_peak = {{0.6}, {0.8, 0.7}, {0.5, 0.7, 0.9}};
  BOOST_TEST(forgetting(late_peak) == (0.3 + 0.0) / 2, tolerance(1e-12));
  BOOST_TEST(backward_transfer(late_peak) == (-0.1 + 0.0) / 2, tolerance(1e-12));
  // No forgetting: exactly zero.
  const AccuracyMatrix frozen = {{0.9}, {0.9, 0.8}};
  BOOST_TEST(backward_transfer(frozen) == 0.0);
  BOOST_TEST(forgetting(frozen) == 0.0);
  BOOST_TEST(backward_transfer({{0.7}}) == 0.0);
  BOOST_TEST(average_accuracy({{0.7}}) == 0.7);
  BOOST_CHECK_THROW(average_accuracy({}), std::invalid_argument);
  BOOST_CHECK_THROW(backward_transfer({{0.9}, {0.9}}), std::invalid_argument);
}

BOOST_AUTO_TEST_CASE(forward_transfer_by_hand_and_na) {
  // Tasks 2 and 3 (t >= 1): (0.62 - 0.5) and (0.45 - 0.55); task 1 (t = 0) never counts.
  BOOST_TEST(*forward_transfer({0.9, 0.62, 0.45}, {0.1, 0.5, 0.55}) == (0.12 - 0.10) / 2, tolerance(1e-12));
  BOOST_TEST(*forward_transfer({0.5, 0.5}, {0.5, 0.5}) == 0.0);  // measured, and no transfer: a real 0
  // n/a, not 0: a single task, or a measurement missing.
  BOOST_TEST(!forward_transfer({0.7}, {0.5}).has_value());
  BOOST_TEST(!forward_transfer({}, {}).has_value());
  BOOST_TEST(!forward_transfer({0.7, 0.8}, {}).has_value());
  BOOST_CHECK_THROW(forward_transfer({0.7, 0.8}, {0.5, 0.5, 0.5}), std::invalid_argument);
}

BOOST_AUTO_TEST_CASE(task_inference_by_the_most_confident_path) {
  // Two tasks of two classes (positions 0,1 and 2,3), three images.
  const std::vector<std::vector<uint8_t>> masks = {{1, 1, 0, 0}, {0, 0, 1, 1}};
  // Task 1's path: image 0 sure of class 1 (softmax over 0,1: 1/(1+e^-3) = 0.953), image 1
  // unsure (0.5), image 2 fairly sure of class 0 (1/(1+e^-1) = 0.731). Logits outside the
  // task's classes (huge here) never count.
  const LogitMatrix path0{3, 4, {0, 3, 50, 50, 1, 1, 50, 50, 2, 1, 50, 50}};
  // Task 2's path: image 0 0.731 for class 3, image 1 0.881 (e^2) for class 2, image 2
  // the same margin as task 1's path (0.731): the tie goes to task 1.
  const LogitMatrix path1{3, 4, {-50, 0, 0, 1, -50, 0, 2, 0, -50, 0, 4, 3}};
  const std::vector<int64_t> predicted = predict_by_most_confident_path({path0, path1}, masks);
  BOOST_TEST(predicted == (std::vector<int64_t>{1, 2, 0}), boost::test_tools::per_element());
  // A shared path (the same logits for every task): the most confident head block.
  const LogitMatrix shared{2, 4, {0, 1, 0, 5, 3, 0, 1, 2}};
  BOOST_TEST(predict_by_most_confident_path({shared, shared}, masks) == (std::vector<int64_t>{3, 0}),
             boost::test_tools::per_element());
  // Wrong shapes are errors naming the task.
  try {
    predict_by_most_confident_path({path0, LogitMatrix{2, 4, std::vector<double>(8)}}, masks);
    BOOST_FAIL("paths of different sizes were accepted");
  } catch (const std::invalid_argument& e) {
    BOOST_TEST(std::string(e.what()).find("task 1") != std::string::npos, e.what());
  }
  BOOST_CHECK_THROW(predict_by_most_confident_path({path0}, masks), std::invalid_argument);
  BOOST_CHECK_THROW(predict_by_most_confident_path({path0, path1}, {{1, 1, 0, 0}, {0, 0, 0, 0}}), std::invalid_argument);
}

BOOST_AUTO_TEST_CASE(mean_and_sample_std) {
  const MeanStd m = mean_std({1.0, 2.0, 4.0});
  BOOST_TEST(m.mean == 7.0 / 3, tolerance(1e-12));
  // Sample variance: ((4/3)^2 + (1/3)^2 + (5/3)^2) / 2 = 7/3
  BOOST_REQUIRE(m.sample_std.has_value());
  BOOST_TEST(*m.sample_std == std::sqrt(7.0 / 3), tolerance(1e-12));
  // One value: a mean, and no spread at all (not a spread of 0).
  BOOST_TEST(mean_std({5.0}).mean == 5.0);
  BOOST_TEST(!mean_std({5.0}).sample_std.has_value());
  BOOST_CHECK_THROW(mean_std({}), std::invalid_argument);
}

BOOST_AUTO_TEST_CASE(cell_file_round_trip_and_setting_check) {
  TempDir dir("continual-report");
  const CellResult cell = make_cell("lora", 3, kForgetful);
  const nlohmann::json setting = {{"dataset", "fashion-mnist"}, {"lr", 0.001}};
  const fs::path file = cell_file(dir.path, cell_name("lora", 3));
  BOOST_TEST(file.filename().string() == "lora-seed3.json");
  BOOST_TEST(!read_cell_file(file, setting).has_value());
  write_cell_file(file, cell, setting);
  const auto back = read_cell_file(file, setting);
  BOOST_REQUIRE(back.has_value());
  BOOST_TEST(to_json(*back) == to_json(cell));
  BOOST_TEST(back->accuracy_matrix[2][1] == 0.85);  // doubles survive the text round trip exactly
  nlohmann::json other = setting;
  other["lr"] = 0.01;
  try {
    read_cell_file(file, other);
    BOOST_FAIL("a cell of another setting was accepted");
  } catch (const std::runtime_error& e) {
    BOOST_TEST(std::string(e.what()).find("different setting") != std::string::npos);
  }
  engine::write_file_atomic(file, std::string(R"({"setting": {"dataset": "fashion-mnist", "lr": 0.001},
                                                  "result": {"method": "lora"}})"));
  try {
    read_cell_file(file, setting);
    BOOST_FAIL("a truncated cell was accepted");
  } catch (const std::runtime_error& e) {
    BOOST_TEST(std::string(e.what()).find("lora-seed3.json") != std::string::npos);
    BOOST_TEST(std::string(e.what()).find("\"seed\"") != std::string::npos);
  }
}

BOOST_AUTO_TEST_CASE(aggregation_over_seeds_and_results_layout) {
  const AccuracyMatrix other = {{0.7}, {0.5, 0.6}, {0.3, 0.65, 0.75}};  // kForgetful - 0.2
  const std::vector<CellResult> cells = {make_cell("naive", 0, kForgetful), make_cell("naive", 1, other),
                                         make_cell("lora", 0, {{0.9}, {0.9, 0.8}, {0.9, 0.8, 0.7}})};
  const auto summaries = summarise({"naive", "lora"}, cells);
  BOOST_REQUIRE(summaries.size() == 2u);
  const MethodSummary& naive = summaries[0];
  BOOST_TEST(naive.accuracy_matrix[2][0].mean == 0.4, tolerance(1e-12));
  BOOST_TEST(*naive.accuracy_matrix[2][0].sample_std == std::sqrt(0.02), tolerance(1e-12));  // two values 0.2 apart
  BOOST_TEST(naive.acc.mean == average_accuracy(kForgetful) - 0.1, tolerance(1e-12));  // mean of the two seeds
  BOOST_TEST(summaries[1].bwt.mean == 0.0);
  BOOST_TEST(!summaries[1].acc.sample_std.has_value());  // lora: one seed

  const nlohmann::json results = results_json({{"tasks", 3}}, {{"name", "toy"}}, summaries);
  BOOST_TEST(results.at("config").at("tasks") == 3);
  const auto& run = results.at("methods").at("naive").at("runs").at(1);
  BOOST_TEST(run.at("seed") == 1);
  BOOST_TEST(run.at("accuracy_matrix").at(1).at(0).get<double>() == 0.5);
  BOOST_TEST(run.at("bwt").get<double>() == backward_transfer(other), tolerance(1e-12));
  BOOST_TEST(run.at("params").at("new_per_task").at(0) == 100);
  for (const char* key : {"base", "total", "conv", "classifier"}) BOOST_TEST(run.at("params").contains(key));
  for (const char* key : {"epochs_per_task", "seconds_per_task", "curves", "validation_matrix", "forgetting"})
    BOOST_TEST(run.contains(key));
  BOOST_TEST(results.at("methods").at("naive").at("mean").at("acc").get<double>() == naive.acc.mean);
  BOOST_TEST(results.at("methods").at("naive").at("sample_std").at("accuracy_matrix").at(2).at(0).get<double>() ==
             std::sqrt(0.02), tolerance(1e-12));
  BOOST_TEST(results.at("methods").at("naive").at("seeds") == 2);
  // One seed: null spreads, not zeros.
  const auto& lora_spread = results.at("methods").at("lora").at("sample_std");
  BOOST_TEST(lora_spread.at("acc").is_null());
  BOOST_TEST(lora_spread.at("accuracy_matrix").at(2).at(1).is_null());
  BOOST_TEST(results.at("methods").at("lora").at("mean").at("acc").get<double>() == 0.8, tolerance(1e-12));

  // The new metrics per run and over seeds; n/a is null, never 0.
  BOOST_TEST(run.at("fwt").get<double>() == 0.15, tolerance(1e-12));
  BOOST_TEST(run.at("class_il_acc").get<double>() == 0.6);
  BOOST_TEST(run.at("class_il_task_inferred_acc").get<double>() == 0.7);
  BOOST_TEST(run.at("accuracy_before_training").size() == 3u);
  const auto& naive_mean = results.at("methods").at("naive").at("mean");
  BOOST_TEST(naive_mean.at("fwt").get<double>() == 0.15, tolerance(1e-12));
  BOOST_TEST(naive_mean.at("train_seconds_per_epoch").get<double>() == 3.0, tolerance(1e-12));
  BOOST_TEST(naive_mean.at("train_seconds_per_epoch_per_task").at(2).get<double>() == 6.0, tolerance(1e-12));
  BOOST_TEST(naive_mean.at("peak_device_memory_bytes").get<double>() == 0.0);
  BOOST_TEST(results.at("methods").at("naive").at("sample_std").at("fwt").get<double>() == 0.0);  // two equal seeds
  CellResult adapters = make_cell("sena", 0, kForgetful), adapters_seed1 = make_cell("sena", 1, kForgetful);
  adapters.class_il_acc.reset();  // a path per task: no argmax over every class
  adapters_seed1.class_il_acc.reset();
  adapters_seed1.accuracy_before_training.clear();  // a cell written before FWT was measured
  adapters_seed1.untrained_accuracy.clear();
  adapters_seed1.curves[1].train_seconds.clear();
  const auto sena = summarise({"sena"}, {adapters, adapters_seed1});
  BOOST_TEST(!sena[0].class_il_acc.has_value());
  BOOST_TEST(!sena[0].fwt.has_value());  // not over the one seed that has it
  BOOST_TEST(sena[0].class_il_task_inferred_acc->mean == 0.7);
  BOOST_TEST(!sena[0].train_seconds_per_epoch.has_value());
  BOOST_TEST(sena[0].train_seconds_per_epoch_per_task.empty());
  const nlohmann::json sena_results = results_json({}, {}, sena);
  const auto& sena_run = sena_results.at("methods").at("sena").at("runs").at(1);
  BOOST_TEST(sena_run.at("class_il_acc").is_null());
  BOOST_TEST(sena_run.at("fwt").is_null());
  for (const char* which : {"mean", "sample_std"})
    for (const char* key : {"fwt", "class_il_acc", "train_seconds_per_epoch"})
      BOOST_TEST(sena_results.at("methods").at("sena").at(which).at(key).is_null(), which << " " << key);
  const std::string md = summary_markdown("Split toy", sena);
  BOOST_TEST(md.find("| sena | 0.7667 ± 0.0000 | -0.1750 ± 0.0000 | 0.1750 ± 0.0000 | – | – | 0.7000 ± 0.0000 |") !=
             std::string::npos, md);
  BOOST_TEST(metrics_csv(sena).find("sena,1,3,0.766667,-0.175000,0.175000,7.500,100,10,120,,,0.700000,,1554,3508,"
                                    "1048576,0\n") !=
             std::string::npos, metrics_csv(sena));

  // A method without cells, or cells that disagree, are errors naming them.
  BOOST_CHECK_THROW(summarise({"sena"}, cells), std::runtime_error);
  CellResult odd = make_cell("naive", 2, kForgetful);
  odd.params.total = 7;
  try {
    summarise({"naive"}, {cells[0], odd});
    BOOST_FAIL("cells with different parameter counts were merged");
  } catch (const std::runtime_error& e) {
    BOOST_TEST(std::string(e.what()).find("naive-seed2") != std::string::npos);
  }
}

BOOST_AUTO_TEST_CASE(summary_and_csv_contents) {
  const auto summaries = summarise({"lora"}, {make_cell("lora", 0, kForgetful), make_cell("lora", 1, kForgetful)});
  const std::string md = summary_markdown("Split toy", summaries);
  BOOST_TEST(md.find("| 1 | 0.5000 ± 0.0000 | 3.0 |") != std::string::npos);
  BOOST_TEST(md.find("| 3 | 0.9500 ± 0.0000 | 5.0 |") != std::string::npos);
  // ACC 0.7667, BWT -0.175, forgetting 0.175, base 100, 10 per later task = 10%.
  BOOST_TEST(md.find("| lora | 0.7667 ± 0.0000 | -0.1750 ± 0.0000 | 0.1750 ± 0.0000 | +0.1500 ± 0.0000 | "
                     "0.6000 ± 0.0000 | 0.7000 ± 0.0000 |") != std::string::npos, md);
  // Bytes per later task: (4 * (10 + 7) + 4 * 10 + 3000) / 2 = 1554; 3 s per epoch; 1 MiB peak.
  BOOST_TEST(md.find("| lora | 100 | 10 | 120 | 10.0% | 1,554 | 3,508 | 3.00 | 8 | 1.0 |") != std::string::npos, md);
  BOOST_TEST(md.find("sample standard deviation") != std::string::npos);
  // Tasks from 1 in both CSVs: R[2][1] of seed 1 is after task 3, task 2.
  const std::string csv = accuracy_matrix_csv(summaries);
  BOOST_TEST(csv.find("lora,1,3,2,0.850000,test,0.850000\n") != std::string::npos, csv);
  std::istringstream rows(csv);
  std::string row;
  std::getline(rows, row);  // the header
  while (std::getline(rows, row)) {
    std::vector<std::string> fields;
    std::istringstream cells(row);
    for (std::string field; std::getline(cells, field, ',');) fields.push_back(field);
    BOOST_TEST((fields.at(2) != "0" && fields.at(3) != "0"), row);  // no task 0 in any line
  }
  BOOST_TEST(std::count(csv.begin(), csv.end(), '\n') == 1 + 2 * 6);
  const std::string params = params_csv(summaries);
  // Stored bytes: 4 * 100, then + 4 * (10 + 7), then + 4 * 10 + 3000.
  // Then the task's training seconds per epoch and the method's peak memory (RSS, device).
  BOOST_TEST(params.find("lora,1,100,60,40,100,60,40,0,0,400,1.5000,1048576,0\n") != std::string::npos, params);
  BOOST_TEST(params.find("lora,2,10,5,5,110,65,45,7,0,468,3.0000,1048576,0\n") != std::string::npos, params);
  BOOST_TEST(params.find("lora,3,10,5,5,120,70,50,0,3000,3508,6.0000,1048576,0\n") != std::string::npos, params);
}

BOOST_AUTO_TEST_CASE(one_seed_has_no_spread_in_the_summary) {
  const auto summaries = summarise({"lora"}, {make_cell("lora", 0, kForgetful)});
  const std::string md = summary_markdown("Split toy", summaries);
  BOOST_TEST(md.find("| 1 | 0.5000 ± – | 3.0 |") != std::string::npos, md);
  BOOST_TEST(md.find("| lora | 0.7667 ± – | -0.1750 ± – | 0.1750 ± – | +0.1500 ± – | 0.6000 ± – | 0.7000 ± – |") !=
             std::string::npos, md);
  BOOST_TEST(md.find("0.0000") == std::string::npos, md);
}

BOOST_AUTO_TEST_CASE(metrics_csv_per_method_and_seed) {
  const AccuracyMatrix other = {{0.7}, {0.5, 0.6}, {0.3, 0.65, 0.75}};
  CellResult slow = make_cell("naive", 4, other);
  slow.seconds_per_task = {10, 20, 30.25};
  const auto summaries = summarise({"naive", "lora"}, {make_cell("naive", 0, kForgetful), slow,
                                                       make_cell("lora", 0, {{0.9}, {0.9, 0.8}, {0.9, 0.8, 0.7}})});
  const std::string csv = metrics_csv(summaries);
  std::istringstream lines(csv);
  std::string line;
  std::vector<std::string> rows;
  while (std::getline(lines, line)) rows.push_back(line);
  BOOST_REQUIRE(rows.size() == 4u);
  BOOST_TEST(rows[0] == "method,seed,tasks,acc,bwt,forgetting,seconds,base_params,new_params_per_later_task,total_params,"
                        "fwt,class_il_acc,class_il_task_inferred_acc,train_seconds_per_epoch,new_bytes_per_later_task,"
                        "stored_bytes,peak_memory_bytes,peak_device_memory_bytes");
  // ACC (0.5+0.85+0.95)/3, BWT ((0.5-0.9)+(0.85-0.8))/2, forgetting (0.4-0.05)/2, 1.5+2.5+3.5 s,
  // base 100, (10+10)/2 per later task, 120 in all.
  // Then FWT 0.15, class-IL 0.6 and 0.7, 3 s per epoch, (68 + 3040) / 2 bytes per later task,
  // 3508 stored, 1 MiB peak, no device.
  const std::string rest = ",0.150000,0.600000,0.700000,3.0000,1554,3508,1048576,0";
  BOOST_TEST(rows[1] == "naive,0,3,0.766667,-0.175000,0.175000,7.500,100,10,120" + rest);
  BOOST_TEST(rows[2] == "naive,4,3,0.566667,-0.175000,0.175000,60.250,100,10,120" + rest);
  BOOST_TEST(rows[3] == "lora,0,3,0.800000,0.000000,0.000000,7.500,100,10,120" + rest);
}

BOOST_AUTO_TEST_CASE(reports_and_plots_are_written) {
  TempDir dir("continual-report");
  const auto summaries = summarise({"naive", "lora"}, {make_cell("naive", 0, kForgetful), make_cell("lora", 0, kForgetful)});
  experiments::record_invocation(2, std::array<char*, 2>{const_cast<char*>("continual"),
                                                         const_cast<char*>("--out=a b")}.data());
  const std::string md = write_reports(dir.path, "Split toy", {{"tasks", 3}}, {{"name", "toy"}}, summaries);
  for (const char* name : {"results.json", "summary.md", "metrics.csv", "accuracy_matrix.csv", "params.csv"}) {
    BOOST_TEST(fs::exists(dir.path / name), name);
    BOOST_TEST(engine::read_file(dir.path / name).size() > 100u, name);
  }
  const std::vector<std::string> figures = figure_names(summaries);
  BOOST_TEST(figures.size() == 8u);  // acc_vs_params, 2 heatmaps, 2 task_accuracy, params_growth, stored_bytes, params_parts
  BOOST_TEST(figures.front() == "acc_vs_params");
  for (const std::string& stem : figures) {
    const std::vector<char> png = engine::read_file(dir.path / (stem + ".png"));
    BOOST_TEST(std::string(png.data() + 1, 3) == "PNG", stem);
    const std::vector<char> pdf = engine::read_file(dir.path / (stem + ".pdf"));
    BOOST_TEST(std::string(pdf.data(), 5) == "%PDF-", stem);
    const std::vector<char> svg = engine::read_file(dir.path / (stem + ".svg"));
    BOOST_TEST(well_formed_xml(std::string(svg.begin(), svg.end())), stem);
  }

  // Provenance: in results.json, and in summary.md's first lines.
  const std::vector<char> bytes = engine::read_file(dir.path / "results.json");
  const nlohmann::json results = nlohmann::json::parse(bytes.begin(), bytes.end());
  const nlohmann::json& p = results.at("provenance");
  for (const char* key : {"commit", "dirty", "version", "build", "command_line", "host_cpu", "threads", "blas",
                          "blas_kernel", "openblas_coretype", "cpu_loops", "gpu", "started", "finished"})
    BOOST_TEST(p.contains(key), key);
  BOOST_TEST(p.at("cpu_loops").get<std::string>() == engine::cpu::isa_name(engine::cpu::active_isa()));
  BOOST_TEST(p.at("commit").get<std::string>() == experiments::build_info().commit);
  BOOST_TEST(p.at("command_line").get<std::string>() == "continual '--out=a b'");
  BOOST_TEST(p.at("threads").get<int>() >= 1);
  BOOST_TEST(!p.at("blas_kernel").get<std::string>().empty());
  BOOST_TEST(p.at("gpu").is_null());  // a CPU run
  BOOST_TEST(p.at("started").get<std::string>().size() == std::string("2026-11-30T05:12:31Z").size());
  const std::string head = md.substr(0, md.find("Final "));
  BOOST_TEST(head.find("- commit: " + experiments::build_info().commit) != std::string::npos, head);
  BOOST_TEST(head.find("- command: `continual '--out=a b'`") != std::string::npos, head);
  BOOST_TEST(head.find("threads; OpenBLAS") != std::string::npos, head);
  BOOST_TEST(head.find("; own loops " + engine::cpu::isa_name(engine::cpu::active_isa()) + "; GPU: ") !=
                 std::string::npos,
             head);
  BOOST_TEST(head.find("- started ") != std::string::npos, head);
}

// Shards of one sweep may run on different GPUs, and sweep.json's config names
// the last one to start; the shard that merges, its own GPU long chosen,
// writes the reports all the same.
BOOST_AUTO_TEST_CASE(reports_are_written_whatever_gpu_the_config_names) {
  TempDir dir("continual-report-gpu");
  engine::backend_available(engine::Device::cuda);  // this process's GPU (if any) is fixed from here on
  const std::string other_gpu = "cuda:" + std::to_string(engine::device_index(engine::Device::cuda) + 1);
  const auto summaries = summarise({"naive"}, {make_cell("naive", 0, kForgetful)});
  BOOST_CHECK_NO_THROW(
      write_reports(dir.path, "Split toy", {{"tasks", 3}, {"device", other_gpu}}, {{"name", "toy"}}, summaries));
}

BOOST_AUTO_TEST_CASE(svg_holds_one_coloured_series_per_method) {
  TempDir dir("continual-report");
  const auto three = summarise({"naive", "lora", "sena"}, {make_cell("naive", 0, kForgetful), make_cell("lora", 0, kForgetful),
                                                          make_cell("sena", 0, kForgetful)});
  write_figures(dir.path, three);
  // cairo writes colours as rgb(r%,g%,b%), six decimals without trailing zeros.
  auto css = [](plot::Color c) {
    auto percent = [](uint8_t v) {
      char buffer[32];
      std::snprintf(buffer, sizeof buffer, "%f", v / 2.55);
      std::string text = buffer;
      text.erase(text.find_last_not_of('0') + 1);
      if (text.back() == '.') text.pop_back();
      return text + "%";
    };
    return "rgb(" + percent(c.r) + "," + percent(c.g) + "," + percent(c.b) + ")";
  };
  for (const char* stem : {"params_growth", "acc_vs_params"}) {
    const std::vector<char> bytes = engine::read_file(dir.path / (std::string(stem) + ".svg"));
    const std::string svg(bytes.begin(), bytes.end());
    BOOST_TEST(well_formed_xml(svg), stem);
    for (size_t m = 0; m < 3; ++m) BOOST_TEST(svg.find(css(plot::palette(m))) != std::string::npos, stem << " series " << m);
    BOOST_TEST(svg.find(css(plot::palette(3))) == std::string::npos, stem);  // no fourth series
  }
}

BOOST_AUTO_TEST_CASE(epoch_log_rows_and_resume_without_duplicates) {
  TempDir dir("continual-report");
  const fs::path file = epoch_log_file(dir.path, "lora-seed0");
  BOOST_TEST(file.filename().string() == "lora-seed0.csv");
  auto read_lines = [&] {
    const std::vector<char> bytes = engine::read_file(file);
    std::istringstream in(std::string(bytes.begin(), bytes.end()));
    std::vector<std::string> lines;
    for (std::string line; std::getline(in, line);) lines.push_back(line);
    return lines;
  };
  {
    EpochLog log(file, 1, 0);
    log.append({1, 1, 0.693147, 0.5, 0.625, 1e-3, 1.25});
    log.append({1, 2, 0.5, 0.75, 0.8, 1e-3, 1.0});
    // Streamed: each row is in the file as soon as it is appended.
    BOOST_TEST(read_lines().size() == 3u);
    log.append({2, 1, 0.4, 0.8, 0.85, 5e-4, 2.0});
    log.append({2, 2, 0.3, 0.9, 0.9, 5e-4, 2.0});  // after the checkpoint: lost when the run is killed
  }
  std::vector<std::string> lines = read_lines();
  BOOST_REQUIRE(lines.size() == 5u);
  BOOST_TEST(lines[0] == "task,epoch,train_loss,train_accuracy,val_accuracy,learning_rate,seconds");
  BOOST_TEST(lines[1] == "1,1,0.693147,0.500000,0.625000,0.001,1.250");
  BOOST_TEST(lines[3] == "2,1,0.400000,0.800000,0.850000,0.0005,2.000");
  {
    // Resumed after task 2's first epoch: its second is trained again, and written once.
    EpochLog log(file, 2, 1);
    log.append({2, 2, 0.31, 0.9, 0.9, 5e-4, 2.0});
  }
  lines = read_lines();
  BOOST_REQUIRE(lines.size() == 5u);
  BOOST_TEST(lines[4] == "2,2,0.310000,0.900000,0.900000,0.0005,2.000");
  // A fresh run of the cell starts the file again.
  EpochLog fresh(file, 1, 0);
  BOOST_TEST(read_lines().size() == 1u);
}

BOOST_AUTO_TEST_CASE(plot_primitives) {
  using namespace continual::plot;
  Canvas c(60, 40);
  c.fill_rect(10, 10, 20, 15, kBlack);
  BOOST_TEST(c.pixel(10, 10).r == 0);
  BOOST_TEST(c.pixel(19, 14).g == 0);
  BOOST_TEST(c.pixel(20, 14).r == 255);
  BOOST_TEST(c.pixel(9, 10).r == 255);
  // A one-unit line centred on a pixel row covers it exactly.
  c.line(0, 30.5, 59, 30.5, Color{255, 0, 0});
  BOOST_TEST(c.pixel(30, 30).g == 0);
  BOOST_TEST(c.pixel(30, 30).r == 255);
  BOOST_TEST(c.pixel(30, 31).g == 255);
  // Text leaves ink inside its measured box (anti-aliased edges: one pixel of
  // slack) and nowhere else.
  Canvas t(200, 40);
  t.text(5, 5, "ACC 0.9", kBlack, 2);
  const double w = Canvas::text_width("ACC 0.9", 2), h = Canvas::text_height(2);
  BOOST_TEST(w > 40.0);
  BOOST_TEST(h > 10.0);
  int inside = 0, outside = 0;
  for (int y = 0; y < 40; ++y)
    for (int x = 0; x < 200; ++x)
      if (t.pixel(x, y).r < 128) (x >= 4 && x <= 6 + w && y >= 4 && y <= 6 + h ? inside : outside)++;
  BOOST_TEST(inside > 30);
  BOOST_TEST(outside == 0);
  // Turned text: a tall box as wide as the text is high.
  Canvas v(40, 200);
  v.text_vertical(5, 5, "ACC 0.9", kBlack, 2);
  inside = outside = 0;
  for (int y = 0; y < 200; ++y)
    for (int x = 0; x < 40; ++x)
      if (v.pixel(x, y).r < 128) (x >= 4 && x <= 6 + h && y >= 4 && y <= 6 + w ? inside : outside)++;
  BOOST_TEST(inside > 30);
  BOOST_TEST(outside == 0);
  BOOST_CHECK_THROW(c.pixel(60, 0), std::out_of_range);
  const std::vector<double> ticks = nice_ticks(0, 1, 5);
  BOOST_REQUIRE(ticks.size() == 6u);
  for (size_t i = 0; i < ticks.size(); ++i) BOOST_TEST(ticks[i] == 0.2 * static_cast<double>(i), tolerance(1e-12));
  BOOST_TEST(nice_ticks(0, 130000, 6).back() == 150000.0);  // step 50k covers the top
  BOOST_TEST(tick_label(1500000, 500000) == "1.5M");
  BOOST_TEST(tick_label(0.25, 0.05) == "0.25");
  BOOST_TEST(tick_label(40000, 20000) == "40k");
  const std::vector<double> decades = log_ticks(1500, 2e6);
  BOOST_REQUIRE(decades.size() == 5u);  // 1k, 10k, 100k, 1M, 10M: no minor ticks over four decades
  BOOST_TEST(decades.front() == 1000.0);
  BOOST_TEST(decades.back() == 1e7);
  const std::vector<double> fine = log_ticks(20, 300);
  BOOST_REQUIRE(fine.size() == 7u);  // 10, 20, 50, 100, 200, 500, 1000
  BOOST_TEST(fine[1] == 20.0);
  BOOST_CHECK_THROW(log_ticks(0, 10), std::invalid_argument);
  BOOST_TEST(colormap(0).r == 68);
  BOOST_TEST(colormap(1).g == 231);
}

BOOST_AUTO_TEST_CASE(sweep_cells_and_shards) {
  const auto cells = sweep_cells({"naive", "lora"}, {0, 1, 2});
  BOOST_REQUIRE(cells.size() == 6u);
  BOOST_TEST(cells[3].method == "lora");
  BOOST_TEST(cells[3].seed == 0u);
  const Shard s = parse_shard("1/2");
  BOOST_TEST(s.contains(1));
  BOOST_TEST(!s.contains(2));
  BOOST_CHECK_THROW(parse_shard("2/2"), std::invalid_argument);
  BOOST_CHECK_THROW(parse_shard("1"), std::invalid_argument);
  BOOST_CHECK_THROW(parse_shard("a/2"), std::invalid_argument);

  auto env = [](std::map<std::string, std::string> vars) {
    return [vars](const std::string& name) -> std::optional<std::string> {
      auto it = vars.find(name);
      if (it == vars.end()) return std::nullopt;
      return it->second;
    };
  };
  BOOST_TEST(resolve_shard(std::nullopt, env({})).count == 1);
  const Shard slurm = resolve_shard(std::nullopt, env({{"SLURM_ARRAY_TASK_ID", "3"},
                                                       {"SLURM_ARRAY_TASK_MIN", "1"},
                                                       {"SLURM_ARRAY_TASK_COUNT", "4"}}));
  BOOST_TEST(slurm.index == 2);
  BOOST_TEST(slurm.count == 4);
  BOOST_TEST(slurm.source.find("Slurm") != std::string::npos);
  const Shard mpi = resolve_shard(std::nullopt, env({{"OMPI_COMM_WORLD_RANK", "1"}, {"OMPI_COMM_WORLD_SIZE", "2"}}));
  BOOST_TEST(mpi.index == 1);
  BOOST_TEST(mpi.count == 2);
  // The flag wins over the environment.
  BOOST_TEST(resolve_shard(std::string("0/3"), env({{"OMPI_COMM_WORLD_RANK", "1"}, {"OMPI_COMM_WORLD_SIZE", "2"}})).count == 3);
  BOOST_CHECK_THROW(resolve_shard(std::nullopt, env({{"PMI_RANK", "0"}})), std::invalid_argument);
  BOOST_CHECK_THROW(resolve_shard(std::nullopt, env({{"SLURM_ARRAY_TASK_ID", "4"}, {"SLURM_ARRAY_TASK_COUNT", "4"}})),
                    std::invalid_argument);
}

BOOST_AUTO_TEST_CASE(progress_plain_lines_and_terminal_bar) {
  std::ostringstream plain;
  Progress p("naive-seed0 task 1/5 epoch 2/3", 1000, plain, false, 0.0);
  p.update(500, 0.69, 0.5);
  p.finish("val 0.8000");
  const std::string text = plain.str();
  BOOST_TEST(text.find("500/1000") != std::string::npos);
  BOOST_TEST(text.find("loss 0.6900") != std::string::npos);
  BOOST_TEST(text.find("val 0.8000\n") != std::string::npos);
  BOOST_TEST(text.find('\r') == std::string::npos);  // no terminal control in logs
  std::ostringstream bar;
  Progress q("t", 100, bar, true);
  q.update(50, 1.0, 0.5);
  BOOST_TEST(bar.str().find("[############............]") != std::string::npos, bar.str());
  BOOST_TEST(bar.str().front() == '\r');
}

BOOST_AUTO_TEST_CASE(version_and_help_footer_of_every_binary) {
  const experiments::BuildInfo& b = experiments::build_info();
  // 40 hex digits from git, or "unknown" outside a checkout.
  BOOST_TEST((b.commit == "unknown" ||
              (b.commit.size() == 40u && b.commit.find_first_not_of("0123456789abcdef") == std::string::npos)),
             b.commit);
  const std::string v = experiments::version_text("bench");
  BOOST_TEST(v.starts_with("bench " + b.version + " (commit " + b.commit), v);
  BOOST_TEST(v.find(std::string("build options: CUDA ") + (b.cuda ? "yes" : "no") + ", MPI " + (b.mpi ? "yes" : "no")) !=
             std::string::npos, v);
  CLI::App app{"test"};
  experiments::add_standard_options(app, "bench", "bench --threads 2");
  BOOST_TEST(app.help().find("Example:\n  bench --threads 2\n") != std::string::npos, app.help());
  try {
    app.parse(std::vector<std::string>{"--version"});
    BOOST_FAIL("--version did not end parsing");
  } catch (const CLI::CallForVersion& e) {
    BOOST_TEST(e.get_exit_code() == 0);
    BOOST_TEST(std::string(e.what()) == v);
  }
}

// --device in every program: one spelling per device; anything else is refused
// naming the flag, the value and the forms accepted.
BOOST_AUTO_TEST_CASE(device_names_have_one_spelling_each) {
  using experiments::DeviceChoice;
  using experiments::parse_device;
  const auto is = [](const DeviceChoice& got, engine::Device device, int index) {
    return got.device == device && got.index == index;
  };
  BOOST_TEST(is(parse_device("cpu"), engine::Device::cpu, 0));
  BOOST_TEST(is(parse_device("cuda"), engine::Device::cuda, 0));
  BOOST_TEST(is(parse_device("cuda:0"), engine::Device::cuda, 0));
  BOOST_TEST(is(parse_device("cuda:7"), engine::Device::cuda, 7));
  BOOST_TEST(is(parse_device("cuda:1023"), engine::Device::cuda, experiments::kMaxDeviceIndex));
  for (const std::string bad : {"", "gpu", "CUDA", "cpu:0", " cuda", "cuda ", "cuda:", "cuda:x", "cuda:-1", "cuda:+1",
                                "cuda: 1", "cuda:1 ", "cuda:01", "cuda:1.5", "cuda:0x1", "cuda:1024",
                                "cuda:99999999999999999999", "cuda:1:2"}) {
    try {
      parse_device(bad);
      BOOST_ERROR("accepted --device '" << bad << "'");
    } catch (const std::invalid_argument& e) {
      const std::string what = e.what();
      BOOST_TEST(what.starts_with("--device: '" + bad + "'"), what);
      BOOST_TEST(what.find("cpu, cuda (the first GPU) or cuda:N") != std::string::npos, what);
    }
  }
}

// --tf32 is a GPU mode: refused with the CPU, where it would change nothing.
BOOST_AUTO_TEST_CASE(tf32_goes_with_a_gpu_only) {
  BOOST_CHECK_NO_THROW(experiments::check_tf32(experiments::parse_device("cuda:2"), true));
  BOOST_CHECK_NO_THROW(experiments::check_tf32(experiments::parse_device("cpu"), false));
  try {
    experiments::check_tf32(experiments::parse_device("cpu"), true);
    BOOST_ERROR("--tf32 accepted with --device cpu");
  } catch (const std::invalid_argument& e) {
    BOOST_TEST(std::string(e.what()).starts_with("--tf32: needs --device cuda"), e.what());
  }
  // Refused before the device is looked at: the same error on any machine.
  BOOST_CHECK_THROW(experiments::use_device("cpu", true), std::invalid_argument);
  BOOST_TEST((experiments::use_device("cpu", false) == engine::Device::cpu));
}
