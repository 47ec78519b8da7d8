// Adapters and the task-incremental model: float64 gradient checks through
// LoRA, ConvLoRA and CP-ConvLoRA (factors and input), their values against the
// formulas, merge/unmerge, task isolation for every method (bit-identical
// outputs and tensors of earlier tasks after training a later one), freezing,
// and checkpoint round trips.
#define BOOST_TEST_MODULE adapters
#include <boost/test/unit_test.hpp>

#include <cmath>

#include "engine/autograd.h"
#include "engine/ops.h"
#include "engine/optim.h"
#include "layers/continual_model.h"
#include "layers/conv2d.h"
#include "layers/linear.h"
#include "layers/models.h"
#include "tests/gradcheck.h"

using namespace layers;
using engine::DType;
using engine::Shape;
using testing::check_gradients;
using testing::random_input;

namespace {

Tensor grad_input(const Shape& shape, engine::Generator& gen) {
  Tensor t = random_input(shape, gen);
  t.set_requires_grad();
  return t;
}

void fill_random(const Tensor& t, engine::Generator& gen) {
  Tensor target = t;
  engine::NoGradGuard no_grad;
  target.copy_(random_input(t.shape(), gen).to(t.dtype()));
}

std::vector<double> values(const Tensor& t) { return t.to_double_vector(); }

}  // namespace

// ---- gradient checks and values -------------------------------------------------------

BOOST_AUTO_TEST_CASE(lora_gradients_and_values) {
  engine::Generator gen(1);
  Linear linear(5, 4, true, &gen);
  linear.to(DType::f64);
  linear.freeze();
  auto lora = std::make_shared<LoRA>(5, 4, 2, 0.5, 0.0, 0, &gen);
  BOOST_TEST(values(lora->B()) == std::vector<double>(8, 0.0));  // dW = 0 at the start
  linear.add_adapter(0, lora);
  fill_random(lora->B(), gen);
  Tensor x = grad_input({3, 5}, gen);
  check_gradients("lora", [&](const auto& in) { return linear.forward(in[0]); }, {x, lora->A(), lora->B()});
  BOOST_TEST(!linear.weight().grad().defined());  // frozen: no gradient reaches W or b
  BOOST_TEST(!linear.bias().grad().defined());

  // y = x (W + s B A)^T + b
  const Tensor merged_weight = engine::add(linear.weight(), engine::mul_scalar(engine::matmul(lora->B(), lora->A()), 0.5));
  const auto expected = values(engine::linear(x, merged_weight, linear.bias()));
  const auto got = values(linear.forward(x));
  for (size_t i = 0; i < got.size(); ++i) BOOST_TEST(got[i] == expected[i], boost::test_tools::tolerance(1e-12));
}

BOOST_AUTO_TEST_CASE(lora_input_dropout_only_in_training) {
  engine::Generator gen(2);
  LoRA with(6, 3, 2, 1.0, 0.5, 42, &gen);
  engine::Generator gen2(2);
  LoRA without(6, 3, 2, 1.0, 0.0, 42, &gen2);
  fill_random(with.B(), gen);
  Tensor(without.B()).copy_(with.B());
  Tensor x = random_input({4, 6}, gen).to(DType::f32);
  BOOST_TEST(values(with.forward(x)) != values(without.forward(x)));
  with.eval();
  BOOST_TEST(values(with.forward(x)) == values(without.forward(x)));
}

BOOST_AUTO_TEST_CASE(convlora_gradients_and_reshape) {
  engine::Generator gen(3);
  const int64_t c = 3, oc = 4, k = 3, r = 2;
  Conv2d conv(c, oc, k, 1, 1, true, &gen);
  conv.to(DType::f64);
  conv.freeze();
  auto adapter = std::make_shared<ConvLoRA>(c, oc, k, r, 0.7, &gen);
  conv.add_adapter(0, adapter);
  BOOST_TEST(adapter->A().shape() == (Shape{r * k, c * k}));
  BOOST_TEST(adapter->B().shape() == (Shape{oc * k, r * k}));

  // B = 0: the adapted layer is the frozen one, bit for bit.
  Tensor x = grad_input({2, c, 5, 6}, gen);
  const Tensor plain = engine::conv2d(x, conv.weight(), conv.bias(), {1, 1, 1, 1});
  BOOST_TEST(values(conv.forward(x)) == values(plain));

  fill_random(adapter->B(), gen);
  check_gradients("convlora", [&](const auto& in) { return conv.forward(in[0]); }, {x, adapter->A(), adapter->B()});
  BOOST_TEST(!conv.weight().grad().defined());

  // dW[o,i,h,w] is element o*C*K*K + i*K*K + h*K + w of B A read row by row.
  const auto a = values(adapter->A()), b = values(adapter->B()), dw = values(adapter->delta());
  for (int64_t f = 0; f < oc * c * k * k; ++f) {
    const int64_t row = f / (c * k), col = f % (c * k);
    double expected = 0;
    for (int64_t j = 0; j < r * k; ++j) expected += b[row * r * k + j] * a[j * c * k + col];
    BOOST_TEST(dw[f] == 0.7 * expected, boost::test_tools::tolerance(1e-12));
  }
}

BOOST_AUTO_TEST_CASE(cp_convlora_gradients_and_values) {
  engine::Generator gen(4);
  const int64_t c = 3, oc = 4, kh = 3, kw = 3, r = 2;
  for (bool input_factor : {false, true}) {
    Conv2d conv(c, oc, kh, 2, 1, true, &gen);
    conv.to(DType::f64);
    conv.freeze();
    auto adapter = std::make_shared<CPConvLoRA>(c, oc, kh, kw, r, 1.5, input_factor, &gen);
    conv.add_adapter(0, adapter);
    BOOST_TEST(values(adapter->C()) == std::vector<double>(oc * r, 0.0));
    fill_random(adapter->C(), gen);
    Tensor x = grad_input({2, c, 5, 5}, gen);
    std::vector<Tensor> inputs = {x, adapter->C(), adapter->Ah(), adapter->Bw()};
    if (input_factor) inputs.push_back(adapter->D());
    check_gradients(input_factor ? "cp_convlora_d" : "cp_convlora",
                    [&](const auto& in) { return conv.forward(in[0]); }, inputs);
    BOOST_TEST(!conv.weight().grad().defined());

    const auto cv = values(adapter->C()), ah = values(adapter->Ah()), bw = values(adapter->Bw());
    const auto d = input_factor ? values(adapter->D()) : std::vector<double>();
    const Tensor full = engine::add(Tensor::zeros({oc, c, kh, kw}, DType::f64), adapter->delta());
    const auto dw = values(full);
    for (int64_t o = 0; o < oc; ++o)
      for (int64_t i = 0; i < c; ++i)
        for (int64_t h = 0; h < kh; ++h)
          for (int64_t w = 0; w < kw; ++w) {
            double expected = 0;
            for (int64_t j = 0; j < r; ++j)
              expected += cv[o * r + j] * ah[h * r + j] * bw[w * r + j] * (input_factor ? d[i * r + j] : 1.0);
            BOOST_TEST(dw[((o * c + i) * kh + h) * kw + w] == 1.5 * expected, boost::test_tools::tolerance(1e-12));
          }
  }
}

// ---- the task-incremental model ----------------------------------------------------------

namespace {

const InputShape kInput{8, 8, 1};

std::unique_ptr<ContinualModel> make_continual(ContinualOptions options, uint64_t seed = 5) {
  options.seed = seed;
  options.adapters.rank_conv = 2;
  options.adapters.rank_fc = 3;
  return std::make_unique<ContinualModel>(make_model("tiny", kInput, 2, {seed, true}), options);
}

// A few Adam steps (with weight decay, which would move any parameter the
// optimiser held) on random data of the current task.
void train_steps(ContinualModel& model, engine::Generator& gen, int steps = 3) {
  engine::Adam adam(model.trainable_parameters(), 1e-2, 0.9, 0.999, 1e-8, 5e-4);
  model.train();
  for (int s = 0; s < steps; ++s) {
    const Tensor x = random_input({6, 1, 8, 8}, gen).to(DType::f32);
    ForwardResult out = model.forward(x);
    std::vector<int64_t> labels;
    for (int i = 0; i < 6; ++i)
      labels.push_back(static_cast<int64_t>(gen.below(static_cast<uint64_t>(model.classes(model.task())))) +
                       out.label_offset);
    adam.zero_grad();
    engine::cross_entropy(out.logits, labels, out.class_mask).backward();
    adam.step();
  }
}

// Task 0's logits (its own columns) in evaluation mode.
std::vector<double> task_logits(ContinualModel& model, int64_t task, const Tensor& x) {
  model.eval();
  model.set_task(task);
  engine::NoGradGuard no_grad;
  const ForwardResult out = model.forward(x);
  const Tensor own = engine::slice(out.logits, 1, out.label_offset, out.label_offset + model.classes(task));
  return values(own);
}

bool owned_by(const std::string& name, int64_t task) {
  const std::string t = std::to_string(task);
  return name.find("tasks." + t + ".") != std::string::npos || name.find("adapters." + t + ".") != std::string::npos;
}

std::map<std::string, std::vector<double>> snapshot(const ContinualModel& model) {
  std::map<std::string, std::vector<double>> out;
  for (const auto& [name, t] : model.state_dict()) out[name] = values(t);
  return out;
}

}  // namespace

BOOST_AUTO_TEST_CASE(every_isolating_method_leaves_earlier_tasks_bit_identical) {
  struct Case {
    std::string name;
    Method method;
    int64_t sena_shared = -1;
    BranchInit init = BranchInit::fresh;
  };
  const std::vector<Case> cases = {{"lora", Method::lora},
                                   {"cp-lora", Method::cp_lora},
                                   {"sena", Method::sena},
                                   {"sena-1-copy", Method::sena, 1, BranchInit::copy_previous},
                                   {"finetune-head", Method::finetune_head},
                                   {"finetune-fc", Method::finetune_fc}};
  for (HeadMode head : {HeadMode::shared, HeadMode::per_task})
    for (const Case& c : cases) {
      BOOST_TEST_CONTEXT(c.name << (head == HeadMode::shared ? " shared head" : " per-task heads")) {
        ContinualOptions options;
        options.method = c.method;
        options.head = head;
        options.sena_shared_layers = c.sena_shared;
        options.branch_init = c.init;
        options.adapters.cp_input_factor = true;
        auto model = make_continual(options);
        engine::Generator gen(10);
        model->add_task(2);
        train_steps(*model, gen);
        model->add_task(3);
        const Tensor probe = random_input({5, 1, 8, 8}, gen).to(DType::f32);
        const std::vector<double> before = task_logits(*model, 0, probe);
        const auto state_before = snapshot(*model);
        model->set_task(1);
        train_steps(*model, gen);
        BOOST_TEST(task_logits(*model, 0, probe) == before, boost::test_tools::per_element());
        bool task1_changed = false;
        for (const auto& [name, v] : snapshot(*model)) {
          if (owned_by(name, 1)) continue;
          BOOST_TEST(v == state_before.at(name), name << " changed while task 1 trained");
        }
        for (const auto& [name, t] : model->named_trainable_parameters()) {
          BOOST_TEST(owned_by(name, 1), name << " is trainable in task 1 but not task 1's");
          task1_changed = task1_changed || values(t) != state_before.at(name);
        }
        BOOST_TEST(task1_changed);
      }
    }
}

BOOST_AUTO_TEST_CASE(naive_forgets_and_joint_trains_everything) {
  engine::Generator gen(11);
  ContinualOptions options;
  options.method = Method::naive;
  auto model = make_continual(options);
  model->add_task(2);
  train_steps(*model, gen);
  model->add_task(2);
  const Tensor probe = random_input({5, 1, 8, 8}, gen).to(DType::f32);
  const auto before = task_logits(*model, 0, probe);
  model->set_task(1);
  train_steps(*model, gen);
  BOOST_TEST(task_logits(*model, 0, probe) != before);  // the isolation check above can see a change

  options.method = Method::joint;
  auto joint = make_continual(options);
  joint->add_task(2);
  joint->add_task(2);
  const ParameterCounts c = joint->counts();
  BOOST_TEST(c.trainable == c.total);
}

BOOST_AUTO_TEST_CASE(only_adapters_bn_copies_and_head_receive_gradients) {
  engine::Generator gen(12);
  auto model = make_continual({});
  model->add_task(2);
  model->add_task(2);
  model->train();
  const Tensor x = random_input({4, 1, 8, 8}, gen).to(DType::f32);
  ForwardResult out = model->forward(x);
  const std::vector<int64_t> labels = {2, 3, 3, 2};
  engine::cross_entropy(out.logits, labels, out.class_mask).backward();
  for (const auto& [name, t] : model->network().named_parameters())
    BOOST_TEST(t.grad().defined() == owned_by(name, 1), name);
  // Task 1's mask keeps exactly its two logits of the four.
  BOOST_TEST(out.class_mask == (std::vector<uint8_t>{0, 0, 1, 1}), boost::test_tools::per_element());
  BOOST_TEST(out.label_offset == 2);
  BOOST_TEST(model->counts().by_type.at("BatchNorm2d") == 2 * 2 * (8 + 16));  // a copy per task
}

BOOST_AUTO_TEST_CASE(merge_and_unmerge) {
  engine::Generator gen(13);
  for (Method method : {Method::lora, Method::cp_lora}) {
    ContinualOptions options;
    options.method = method;
    auto model = make_continual(options);
    model->add_task(2);
    model->add_task(2);
    for (const auto& [name, t] : model->named_trainable_parameters()) fill_random(t, gen);
    const Tensor x = random_input({3, 1, 8, 8}, gen).to(DType::f32);
    const auto weights_before = snapshot(*model);
    const auto unmerged = task_logits(*model, 1, x);
    model->merge_adapters();
    BOOST_CHECK_THROW(model->set_task(0), std::logic_error);
    const auto merged = task_logits(*model, 1, x);
    for (size_t i = 0; i < merged.size(); ++i) BOOST_TEST(merged[i] == unmerged[i], boost::test_tools::tolerance(1e-5));
    bool weight_changed = false;
    for (const auto& [name, v] : snapshot(*model)) weight_changed = weight_changed || v != weights_before.at(name);
    BOOST_TEST(weight_changed);
    model->unmerge_adapters();
    BOOST_TEST((snapshot(*model) == weights_before));  // exactly restored
    BOOST_TEST(task_logits(*model, 1, x) == unmerged, boost::test_tools::per_element());
  }
}

BOOST_AUTO_TEST_CASE(checkpoint_round_trip_rebuilds_every_task) {
  engine::Generator gen(14);
  ContinualOptions options;
  options.method = Method::sena;
  auto a = make_continual(options, 1);
  a->add_task(2);
  train_steps(*a, gen, 2);
  a->add_task(3);
  train_steps(*a, gen, 2);
  auto b = make_continual(options, 2);  // other seed: every value differs until loaded
  b->add_task(2);
  b->add_task(3);
  b->load_state_dict(a->state_dict());
  b->load_counters(a->counters());
  const Tensor x = random_input({3, 1, 8, 8}, gen).to(DType::f32);
  for (int64_t t = 0; t < 2; ++t) BOOST_TEST(task_logits(*b, t, x) == task_logits(*a, t, x));
  // The shared network and task 0 keep PyTorch's names.
  const auto names = a->state_dict();
  BOOST_TEST(names.front().first == "0.weight");
  bool has_branch = false;
  for (const auto& [name, t] : names) has_branch = has_branch || name == "9.tasks.1.weight";
  BOOST_TEST(has_branch);
}

BOOST_AUTO_TEST_CASE(new_task_parts_follow_the_model_dtype) {
  engine::Generator gen(15);
  auto model = make_continual({});
  model->add_task(2);
  model->to(DType::f64);
  model->add_task(2);
  for (const auto& [name, t] : model->state_dict()) BOOST_TEST((t.dtype() == DType::f64), name);
  const Tensor x = random_input({2, 1, 8, 8}, gen);
  BOOST_TEST(model->forward(x).logits.shape() == (Shape{2, 4}));
  BOOST_CHECK_THROW(model->set_task(2), std::out_of_range);
}
