// File: drift_report.h
//
// A version's drift window (drift_window.h) as the API and the metrics show
// it: feature labels from the model file's names, the worst features, and
// the DriftReport message of Models.GetDrift and VersionInfo.drift.
#ifndef ANORAND_SERVER_DRIFT_REPORT_H_
#define ANORAND_SERVER_DRIFT_REPORT_H_

#include <string>
#include <vector>

#include "anorand/v1/models.pb.h"
#include "model/compiled_model.h"
#include "model/drift_window.h"

namespace anorand {

// One label per input feature: the model file's feature name; "#<index>"
// when the file has no names; "<name>#<index>" for a name that is empty or
// that another feature also has, so that every label is distinct.
std::vector<std::string> DriftFeatureLabels(const CompiledModel& model);

// The `top` features with the largest PSI, worst first; ties by index.
std::vector<FeatureDriftStats> WorstFeatures(std::vector<FeatureDriftStats> features, int top);

// Fills `report` for version `version` of `name`: tracked = false and no
// figures when `drift` is null.
void FillDriftReport(const std::string& name, int64_t version, const CompiledModel& model,
                     const DriftWindow* drift, int top, v1::DriftReport* report);

}  // namespace anorand

#endif  // ANORAND_SERVER_DRIFT_REPORT_H_
