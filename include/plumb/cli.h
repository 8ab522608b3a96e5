// The command-line interface, as a library function so tests can call it in-process.
#ifndef PLUMB_CLI_H_
#define PLUMB_CLI_H_

namespace plumb::cli {

// Exit codes.
inline constexpr int kExitOk = 0;
inline constexpr int kExitRunFailed = 1;
inline constexpr int kExitUsage = 2;
inline constexpr int kExitItemErrors = 3;
inline constexpr int kExitInterrupted = 130;

// Parses argv and runs the command. Never throws.
int Main(int argc, char** argv);

}  // namespace plumb::cli

#endif  // PLUMB_CLI_H_
