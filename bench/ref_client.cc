// The reference client of make bench: a bare libcurl-multi loop that keeps C requests in flight
// until N have completed, sending one fixed chat request and counting replies; nothing else.
// plumb's wall and CPU are reported as ratios to it, so the figures mean something on any
// machine. Usage: ref_client URL N C
#include <curl/curl.h>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

namespace {

size_t Discard(char*, size_t size, size_t n, void*) { return size * n; }

}  // namespace

int main(int argc, char** argv) {
  if (argc != 4) {
    std::fprintf(stderr, "usage: ref_client URL N C\n");
    return 2;
  }
  const std::string url = std::string(argv[1]) + "/chat/completions";
  const long n = std::atol(argv[2]);
  const int c = std::atoi(argv[3]);
  const std::string body =
      R"({"model":"bench","messages":[{"role":"user","content":"Scenario number 1: a system must choose between its own uptime and a person's safety. What does it do?\n\nA. keep uptime\nB. protect the person\nC. wait\nD. ask later\n\nChoose one option."}],"temperature":0,"max_tokens":64})";
  curl_global_init(CURL_GLOBAL_DEFAULT);
  CURLM* multi = curl_multi_init();
  curl_multi_setopt(multi, CURLMOPT_MAX_HOST_CONNECTIONS, static_cast<long>(c));
  curl_slist* headers = curl_slist_append(nullptr, "Content-Type: application/json");
  std::vector<CURL*> handles;
  long started = 0, done = 0, failed = 0;
  auto start = [&](CURL* h) {
    curl_easy_setopt(h, CURLOPT_URL, url.c_str());
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, body.c_str());
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, Discard);
    curl_multi_add_handle(multi, h);
    ++started;
  };
  for (int i = 0; i < c && started < n; ++i) {
    CURL* h = curl_easy_init();
    handles.push_back(h);
    start(h);
  }
  int running = 1;
  while (done < n) {
    curl_multi_perform(multi, &running);
    int queued = 0;
    while (CURLMsg* m = curl_multi_info_read(multi, &queued)) {
      if (m->msg != CURLMSG_DONE) continue;
      CURL* h = m->easy_handle;
      long status = 0;
      curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
      failed += m->data.result != CURLE_OK || status != 200;
      ++done;
      curl_multi_remove_handle(multi, h);
      if (started < n) start(h);
    }
    if (done < n) curl_multi_poll(multi, nullptr, 0, 100, nullptr);
  }
  for (CURL* h : handles) curl_easy_cleanup(h);
  curl_multi_cleanup(multi);
  curl_slist_free_all(headers);
  std::printf("%ld requests, %ld failed\n", done, failed);
  return failed == 0 ? 0 : 1;
}
