#pragma once
namespace ferry::client {
// `ferry service install|uninstall ...`; argv holds the arguments after "service".
int RunService(int argc, char** argv);
}  // namespace ferry::client
