// The runner's bookkeeping, without training: metric formulas on hand-made
// accuracy matrices, cell files, aggregation over seeds, results.json layout,
// summary and CSVs, shard selection, plots and the progress display.
#define BOOST_TEST_MODULE continual_report
#include <boost/test/unit_test.hpp>

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <map>
#include <sstream>

#include "engine/io.h"
#include "experiments/continual/aggregate.h"
#include "experiments/continual/cell_result.h"
#include "experiments/continual/metrics.h"
#include "experiments/continual/plot.h"
#include "experiments/continual/progress.h"
#include "experiments/continual/report.h"
#include "experiments/continual/sweep.h"

using namespace continual;
using boost::test_tools::tolerance;
namespace fs = std::filesystem;

namespace {

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
  c.params = {100, {100, 10, 10}, {60, 5, 5}, {40, 5, 5}, 120, 70, 50, {0, 7, 0}, {0, 0, 3000}, 3508};
  c.epochs_per_task = {3, 4, 5};
  c.seconds_per_task = {1.5, 2.5, 3.5};
  c.curves = {{{1.0, 0.5}, {0.6, 0.9}, 2}, {{0.8}, {0.8}, 1}, {{0.7}, {0.95}, 1}};
  c.peak_memory_bytes = 1 << 20;
  return c;
}

struct TempDir {
  fs::path path;
  TempDir() {
    path = fs::temp_directory_path() / ("continual-test-" + std::to_string(::getpid()) + "-" +
                                        std::to_string(reinterpret_cast<uintptr_t>(this)));
    fs::create_directories(path);
  }
  ~TempDir() { fs::remove_all(path); }
};

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

BOOST_AUTO_TEST_CASE(mean_and_sample_std) {
  const MeanStd m = mean_std({1.0, 2.0, 4.0});
  BOOST_TEST(m.mean == 7.0 / 3, tolerance(1e-12));
  // Sample variance: ((4/3)^2 + (1/3)^2 + (5/3)^2) / 2 = 7/3
  BOOST_TEST(m.std == std::sqrt(7.0 / 3), tolerance(1e-12));
  BOOST_TEST(mean_std({5.0}).std == 0.0);
  BOOST_CHECK_THROW(mean_std({}), std::invalid_argument);
}

BOOST_AUTO_TEST_CASE(cell_file_round_trip_and_setting_check) {
  TempDir dir;
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
  BOOST_TEST(naive.accuracy_matrix[2][0].std == std::sqrt(0.02), tolerance(1e-12));  // two values 0.2 apart
  BOOST_TEST(naive.acc.mean == average_accuracy(kForgetful) - 0.1, tolerance(1e-12));  // mean of the two seeds
  BOOST_TEST(summaries[1].bwt.mean == 0.0);
  BOOST_TEST(summaries[1].acc.std == 0.0);

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
  BOOST_TEST(results.at("methods").at("naive").at("std").at("accuracy_matrix").at(2).at(0).get<double>() ==
             std::sqrt(0.02), tolerance(1e-12));

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
  BOOST_TEST(md.find("| lora | 0.7667 ± 0.0000 | -0.1750 ± 0.0000 | 0.1750 ± 0.0000 | 100 | 10 | 120 | 10.0% |") !=
             std::string::npos, md);
  const std::string csv = accuracy_matrix_csv(summaries);
  BOOST_TEST(csv.find("lora,1,2,1,0.850000,test,0.850000\n") != std::string::npos);
  BOOST_TEST(std::count(csv.begin(), csv.end(), '\n') == 1 + 2 * 6);
  const std::string params = params_csv(summaries);
  // Stored bytes: 4 * 100, then + 4 * (10 + 7), then + 4 * 10 + 3000.
  BOOST_TEST(params.find("lora,1,10,5,5,110,65,45,7,0,468\n") != std::string::npos, params);
  BOOST_TEST(params.find("lora,2,10,5,5,120,70,50,0,3000,3508\n") != std::string::npos, params);
}

BOOST_AUTO_TEST_CASE(reports_and_plots_are_written) {
  TempDir dir;
  const auto summaries = summarise({"naive", "lora"}, {make_cell("naive", 0, kForgetful), make_cell("lora", 0, kForgetful)});
  write_reports(dir.path, "Split toy", {{"tasks", 3}}, {{"name", "toy"}}, summaries);
  for (const char* name : {"results.json", "summary.md", "accuracy_matrix.csv", "params.csv", "heatmap_naive.png",
                           "heatmap_lora.png", "task_accuracy_lora.png", "params_growth.png", "params_parts.png"}) {
    BOOST_TEST(fs::exists(dir.path / name), name);
    const std::vector<char> bytes = engine::read_file(dir.path / name);
    BOOST_TEST(bytes.size() > 100u, name);
    if (std::string(name).ends_with(".png")) BOOST_TEST(std::string(bytes.data() + 1, 3) == "PNG", name);
  }
}

BOOST_AUTO_TEST_CASE(plot_primitives) {
  using namespace continual::plot;
  Canvas c(60, 40);
  c.fill_rect(10, 10, 20, 15, kBlack);
  BOOST_TEST(c.pixel(10, 10).r == 0);
  BOOST_TEST(c.pixel(19, 14).g == 0);
  BOOST_TEST(c.pixel(20, 14).r == 255);
  c.line(0, 30, 59, 30, Color{255, 0, 0});
  BOOST_TEST(c.pixel(30, 30).g == 0);
  BOOST_TEST(c.pixel(30, 30).r == 255);
  // Text leaves ink inside its measured box and nowhere else.
  Canvas t(200, 40);
  t.text(5, 5, "ACC 0.9", kBlack, 2);
  const int w = Canvas::text_width("ACC 0.9", 2);
  int inside = 0, outside = 0;
  for (int y = 0; y < 40; ++y)
    for (int x = 0; x < 200; ++x)
      if (t.pixel(x, y).r == 0) (x >= 5 && x < 5 + w && y >= 5 && y < 5 + Canvas::text_height(2) + 4 ? inside : outside)++;
  BOOST_TEST(inside > 30);
  BOOST_TEST(outside == 0);
  const std::vector<double> ticks = nice_ticks(0, 1, 5);
  BOOST_REQUIRE(ticks.size() == 6u);
  for (size_t i = 0; i < ticks.size(); ++i) BOOST_TEST(ticks[i] == 0.2 * static_cast<double>(i), tolerance(1e-12));
  BOOST_TEST(nice_ticks(0, 130000, 6).back() == 150000.0);  // step 50k covers the top
  BOOST_TEST(tick_label(1500000, 500000) == "1.5M");
  BOOST_TEST(tick_label(0.25, 0.05) == "0.25");
  BOOST_TEST(tick_label(40000, 20000) == "40k");
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
