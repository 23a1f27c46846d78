// SchemaSet bookkeeping: node ownership and the name and kind indexes.
#include "schema.h"

namespace orch::api {

const Property* Schema::FindProperty(const std::string& field) const {
  for (const Property& p : properties) {
    if (p.name == field) return &p;
  }
  return nullptr;
}

Schema* SchemaSet::New() {
  nodes_.push_back(std::make_unique<Schema>());
  return nodes_.back().get();
}

Schema* SchemaSet::AddNamed(Schema* schema) {
  named_[schema->name] = schema;
  return schema;
}

const Schema* SchemaSet::Find(const std::string& full_name) const {
  auto it = named_.find(full_name);
  return it == named_.end() ? nullptr : it->second;
}

const Schema* SchemaSet::FindKind(const std::string& group, const std::string& version,
                                  const std::string& kind) const {
  for (const auto& [name, schema] : named_) {
    for (const auto& gvk : schema->gvks) {
      if (gvk.group == group && gvk.version == version && gvk.kind == kind) return schema;
    }
  }
  return nullptr;
}

}  // namespace orch::api
