// Copyright (c) uttm developers.
//
// uttm: run workloads against simulated devices with a real backup store. See docs/tool.md.
#include "cli.h"

int main(int argc, char** argv) { return uttm::tool::RunCli(argc, argv); }
