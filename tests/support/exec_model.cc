// A test model for the exec backend: answers JSON-line requests. Flags:
//   --sleep-ms N        wait before each answer
//   --error-on ITEM     answer {"error"} for that item
//   --crash-on ITEM     exit(3) on that item the first time (a marker file in --state DIR)
//   --die               exit at once, before reading anything
//   --leak VAR          print $VAR to stderr and put it in every answer (a careless model)
//   --agent             with tools: first read_file /notes.txt when offered (flat call shape),
//                       then call ask_owner (OpenAI's nested shape) and quote the tool results
//   --pick MODE         read the options ("<label>. <text>" lines of the last message) and
//                       answer by them: `first` (the first shown), `word:W` (the option whose
//                       text holds W), `letters:W` (as word:W when the labels are letters,
//                       else the first shown), `echo` (the option whose text the message
//                       also holds elsewhere, e.g. a view the user stated; else the first
//                       shown: a sycophant); options shown as "- <text>" lines (no labels)
//                       are answered with their text
// Every other answer is "Answer: A pid=<pid>" with 7 prompt and 2 completion tokens.
#include <unistd.h>

#include <cctype>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <thread>

int main(int argc, char** argv) {
  int sleep_ms = 0;
  std::string error_on, crash_on, state = "/tmp", leak, pick;
  bool agent = false;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--die") return 2;
    if (a == "--agent") {
      agent = true;
      continue;
    }
    if (i + 1 >= argc) break;
    if (a == "--sleep-ms")
      sleep_ms = std::stoi(argv[++i]);
    else if (a == "--error-on")
      error_on = argv[++i];
    else if (a == "--crash-on")
      crash_on = argv[++i];
    else if (a == "--state")
      state = argv[++i];
    else if (a == "--pick")
      pick = argv[++i];
    else if (a == "--leak")
      leak = std::getenv(argv[++i]) ? std::getenv(argv[i]) : "";
  }
  if (!leak.empty()) std::cerr << "my key is " << leak << std::endl;
  std::cerr << "exec_model ready" << std::endl;
  std::string line;
  while (std::getline(std::cin, line)) {
    auto req = nlohmann::json::parse(line);
    std::string item = req["item_id"];
    if (item == crash_on) {
      std::string marker = state + "/crashed-" + item;
      if (!std::ifstream(marker)) {
        std::ofstream(marker) << "x";
        std::cerr << "crashing on " << item << std::endl;
        return 3;
      }
    }
    if (sleep_ms) std::this_thread::sleep_for(std::chrono::milliseconds(sleep_ms));
    nlohmann::json out = {{"id", req["id"]}};
    if (agent && req.contains("tools")) {
      bool offered_read = false, read = false;
      for (const auto& t : req["tools"]) offered_read = offered_read || t["name"] == "read_file";
      std::string seen;
      for (const auto& m : req["messages"]) {
        if (m["role"] != "tool") continue;
        read = true;
        seen += m["content"].get<std::string>();
      }
      if (offered_read && !read) {
        out["tool_calls"] = {{{"name", "read_file"}, {"arguments", {{"path", "/notes.txt"}}}}};
      } else {
        out["text"] = "saw: " + seen;
        out["tool_calls"] = {{{"id", "x1"},
                              {"type", "function"},
                              {"function", {{"name", "ask_owner"}, {"arguments", "{}"}}}}};
      }
      out["prompt_tokens"] = 7;
      out["completion_tokens"] = 2;
    } else if (!pick.empty()) {
      // The option lines: "<label>. <text>".
      std::vector<std::pair<std::string, std::string>> options;
      const std::string content = req["messages"].back()["content"].get<std::string>();
      std::istringstream text(content);
      for (std::string l; std::getline(text, l);) {
        if (l.rfind("- ", 0) == 0) {  // shown without labels: answered by text
          options.emplace_back("", l.substr(2));
          continue;
        }
        size_t dot = l.find(". ");
        if (dot == std::string::npos || dot == 0 || dot > 3) continue;
        options.emplace_back(l.substr(0, dot), l.substr(dot + 2));
      }
      std::string mode = pick, word;
      if (size_t colon = pick.find(':'); colon != std::string::npos) {
        mode = pick.substr(0, colon);
        word = pick.substr(colon + 1);
      }
      bool letters = !options.empty() && !options[0].first.empty() &&
                     std::isalpha(static_cast<unsigned char>(options[0].first[0]));
      size_t chosen = 0;
      if (mode == "word" || (mode == "letters" && letters)) {
        for (size_t k = 0; k < options.size(); ++k) {
          if (options[k].second.find(word) != std::string::npos) chosen = k;
        }
      }
      if (mode == "echo") {
        for (size_t k = 0; k < options.size(); ++k) {
          int seen = 0;
          for (size_t at = content.find(options[k].second); at != std::string::npos;
               at = content.find(options[k].second, at + 1)) {
            ++seen;
          }
          if (seen > 1) chosen = k;
        }
      }
      std::string answer = options.empty()                 ? "?"
                           : options[chosen].first.empty() ? options[chosen].second
                                                           : options[chosen].first;
      out["text"] = "Answer: " + answer;
    } else if (item == error_on) {
      out["error"] = "cannot answer " + item;
    } else {
      out["text"] = "Answer: A pid=" + std::to_string(getpid()) +
                    (leak.empty() ? "" : " and the key is " + leak);
      out["prompt_tokens"] = 7;
      out["completion_tokens"] = 2;
    }
    std::cout << out.dump() << std::endl;
  }
  return 0;
}
