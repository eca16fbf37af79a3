#include "client/host_fields.h"

#include <iterator>

namespace ferry::client {
namespace {

constexpr proto::WantedMember kHostFields[] = {{"hook_event_name"},
                                               {"type"},
                                               {"session_id"},
                                               {"conversation_id"},
                                               {"thread-id"},
                                               {"thread_id"},
                                               {"taskId"},
                                               {"trajectory_id"},
                                               {"cwd"},
                                               {"workspace_roots", /*first_element=*/true}};
constexpr size_t kKindFields = 2, kSessionFields = 6, kCwdFields = 2;
static_assert(std::size(kHostFields) == kKindFields + kSessionFields + kCwdFields &&
              std::size(kHostFields) == kHostFieldCount);

}  // namespace

std::span<const proto::WantedMember> HostFieldsWanted() { return kHostFields; }

HostFields PickHostFields(std::string* values) {
  auto first = [&](size_t from, size_t count) -> std::string {
    for (size_t i = from; i < from + count; ++i) {
      if (!values[i].empty()) return std::move(values[i]);
    }
    return {};
  };
  HostFields f;
  f.kind = first(0, kKindFields);
  f.session = first(kKindFields, kSessionFields);
  f.cwd = first(kKindFields + kSessionFields, kCwdFields);
  return f;
}

}  // namespace ferry::client
