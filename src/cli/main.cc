// plumb's entry point; everything else lives in plumb_core (src/cli/commands.cc).
#include "plumb/cli.h"

int main(int argc, char** argv) { return plumb::cli::Main(argc, argv); }
