#include "server/shadow_metrics.h"

#include <map>
#include <string>
#include <utility>

#include "server/metric_util.h"

namespace anorand {

using prometheus::ClientMetric;
using prometheus::MetricFamily;
using prometheus::MetricType;

std::vector<MetricFamily> ShadowCollector::Collect() const {
  MetricFamily compared{"anorand_shadow_compared_records_total",
                        "Records scored by both the serving version and the model's shadow.",
                        MetricType::Counter,
                        {}};
  MetricFamily correlation{"anorand_shadow_rank_correlation",
                           "Spearman rank correlation of serving and shadow scores over the "
                           "comparison window (--shadow_window_records).",
                           MetricType::Gauge,
                           {}};
  MetricFamily disagreement{"anorand_shadow_flag_disagreement_ratio",
                            "Share of the comparison window flagged by one version only "
                            "(direction serving_only or shadow_only).",
                            MetricType::Gauge,
                            {}};
  MetricFamily quantiles{"anorand_shadow_score_quantile",
                         "Score quantiles over the comparison window, of the serving version "
                         "and of the shadow (scorer).",
                         MetricType::Gauge,
                         {}};
  MetricFamily dropped{"anorand_shadow_dropped_records_total",
                       "Sampled records dropped because the shadow queue "
                       "(--shadow_queue_records) was full.",
                       MetricType::Counter,
                       {}};
  // A model whose shadow has compared records exports its drop counter from
  // 0, so that rate() sees the first drop.
  std::map<std::string, int64_t> drops = shadow_->DroppedAll();
  for (const ShadowComparisonStats& c : shadow_->CompareAll()) {
    drops.emplace(c.model, 0);
    const std::vector<ClientMetric::Label> pair = {{"model", c.model},
                                                   {"version", VersionLabel(c.version)},
                                                   {"shadow_version",
                                                    VersionLabel(c.shadow_version)}};
    auto with = [&pair](std::vector<ClientMetric::Label> more) {
      std::vector<ClientMetric::Label> l = pair;
      l.insert(l.end(), more.begin(), more.end());
      return l;
    };
    ClientMetric n;
    n.label = pair;
    n.counter.value = static_cast<double>(c.compared);
    compared.metric.push_back(std::move(n));
    correlation.metric.push_back(GaugeMetric(pair, c.rank_correlation));
    disagreement.metric.push_back(
        GaugeMetric(with({{"direction", "serving_only"}}), c.serving_only_flagged));
    disagreement.metric.push_back(
        GaugeMetric(with({{"direction", "shadow_only"}}), c.shadow_only_flagged));
    for (const auto& [scorer, q] :
         {std::pair<const char*, ScoreQuantileSet>{"serving", c.serving_scores},
          std::pair<const char*, ScoreQuantileSet>{"shadow", c.shadow_scores}}) {
      quantiles.metric.push_back(GaugeMetric(with({{"scorer", scorer}, {"quantile", "0.5"}}), q.p50));
      quantiles.metric.push_back(GaugeMetric(with({{"scorer", scorer}, {"quantile", "0.9"}}), q.p90));
      quantiles.metric.push_back(GaugeMetric(with({{"scorer", scorer}, {"quantile", "0.99"}}), q.p99));
    }
  }
  for (const auto& [model, count] : drops) {
    ClientMetric m;
    m.label = {{"model", model}};
    m.counter.value = static_cast<double>(count);
    dropped.metric.push_back(std::move(m));
  }
  return {std::move(compared), std::move(correlation), std::move(disagreement),
          std::move(quantiles), std::move(dropped)};
}

}  // namespace anorand
