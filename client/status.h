#pragma once
namespace ferry::client {
// `ferry status [--json]`: exit 0 healthy, 1 degraded, 3 no daemon answers.
int RunStatus(int argc, char** argv);
}  // namespace ferry::client
