#pragma once
namespace ferry::client {
// `ferry emit ...`; argv holds the arguments after "emit". Returns the exit code.
int RunEmit(int argc, char** argv);
}  // namespace ferry::client
