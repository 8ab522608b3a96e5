// The fault-injecting loopback server: one thread per connection, HTTP/1.1 keep-alive.
#include "fault_server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstring>

#include "fake_server.h"

namespace plumb::testing {
namespace {

bool SendAll(int fd, const std::string& data) {
  size_t sent = 0;
  while (sent < data.size()) {
    ssize_t n = send(fd, data.data() + sent, data.size() - sent, MSG_NOSIGNAL);
    if (n <= 0) return false;
    sent += static_cast<size_t>(n);
  }
  return true;
}

std::string Response(int status, const std::string& reason, const std::string& type,
                     const std::string& body, size_t content_length) {
  return "HTTP/1.1 " + std::to_string(status) + " " + reason + "\r\nContent-Type: " + type +
         "\r\nContent-Length: " + std::to_string(content_length) + "\r\n\r\n" + body;
}

std::string Json200(const std::string& body) {
  return Response(200, "OK", "application/json", body, body.size());
}

// Reads one request (headers and Content-Length body); false when the peer closed.
bool ReadRequest(int fd, std::string& buffer, std::string& body, const std::atomic<bool>& stop) {
  while (true) {
    size_t end = buffer.find("\r\n\r\n");
    if (end != std::string::npos) {
      size_t length = 0;
      std::string headers = buffer.substr(0, end);
      for (char& c : headers) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      size_t cl = headers.find("content-length:");
      if (cl != std::string::npos) length = std::stoul(headers.substr(cl + 15));
      if (buffer.size() >= end + 4 + length) {
        body = buffer.substr(end + 4, length);
        buffer.erase(0, end + 4 + length);
        return true;
      }
    }
    pollfd p{fd, POLLIN, 0};
    int ready = poll(&p, 1, 100);
    if (stop) return false;
    if (ready <= 0) continue;
    char chunk[65536];
    ssize_t n = recv(fd, chunk, sizeof chunk, 0);
    if (n <= 0) return false;
    buffer.append(chunk, static_cast<size_t>(n));
  }
}

}  // namespace

const char* FaultName(Fault f) {
  switch (f) {
    case Fault::kNone:
      return "none";
    case Fault::kResetMidBody:
      return "reset mid-body";
    case Fault::kTruncatedBody:
      return "truncated body";
    case Fault::kMalformedJson:
      return "malformed JSON";
    case Fault::kHtml502:
      return "HTML 502";
    case Fault::kHtml200:
      return "200 with HTML";
    case Fault::kEmptyChoices:
      return "empty choices";
    case Fault::kNullContent:
      return "null content";
    case Fault::kHang:
      return "hang past the timeout";
    case Fault::kSlowTrickle:
      return "slow trickle";
    case Fault::kWrongLength:
      return "wrong Content-Length";
    case Fault::kInvalidUtf8:
      return "invalid UTF-8";
    case Fault::kHugeReply:
      return "2 MB reply";
  }
  return "?";
}

std::vector<Fault> AllFaults() {
  return {Fault::kResetMidBody, Fault::kTruncatedBody, Fault::kMalformedJson, Fault::kHtml502,
          Fault::kHtml200,      Fault::kEmptyChoices,  Fault::kNullContent,   Fault::kHang,
          Fault::kSlowTrickle,  Fault::kWrongLength,   Fault::kInvalidUtf8,   Fault::kHugeReply};
}

FaultServer::FaultServer(Plan plan, Answer answer)
    : plan_(std::move(plan)), answer_(std::move(answer)) {
  listen_fd_ = socket(AF_INET, SOCK_STREAM, 0);
  int one = 1;
  setsockopt(listen_fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  socklen_t len = sizeof addr;
  getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len);
  port_ = ntohs(addr.sin_port);
  listen(listen_fd_, 1024);
  acceptor_ = std::thread([this] { AcceptLoop(); });
}

FaultServer::~FaultServer() {
  stop_ = true;
  shutdown(listen_fd_, SHUT_RDWR);
  close(listen_fd_);
  acceptor_.join();
  std::vector<std::thread> threads;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (int fd : open_fds_) shutdown(fd, SHUT_RDWR);
    threads.swap(connections_);
  }
  for (auto& t : threads) t.join();
}

std::string FaultServer::base_url() const {
  return "http://127.0.0.1:" + std::to_string(port_) + "/v1";
}

std::map<std::string, int> FaultServer::good_replies() const {
  std::lock_guard<std::mutex> lock(mu_);
  return good_;
}

std::map<Fault, int> FaultServer::faults() const {
  std::lock_guard<std::mutex> lock(mu_);
  return played_;
}

void FaultServer::AcceptLoop() {
  while (!stop_) {
    pollfd p{listen_fd_, POLLIN, 0};
    if (poll(&p, 1, 100) <= 0) continue;
    int fd = accept(listen_fd_, nullptr, nullptr);
    if (fd < 0) continue;
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    std::lock_guard<std::mutex> lock(mu_);
    open_fds_.push_back(fd);
    connections_.emplace_back([this, fd] { Serve(fd); });
  }
}

void FaultServer::Serve(int fd) {
  std::string buffer, body;
  while (!stop_ && ReadRequest(fd, buffer, body, stop_)) {
    ++requests_;
    Json request = Json::parse(body, nullptr, false);
    std::string prompt = LastUserMessage(request);
    Fault fault;
    {
      std::lock_guard<std::mutex> lock(mu_);
      fault = plan_(prompt, attempts_[prompt]++);
      // Counted before anything is sent: the client may act on the last byte at once.
      if (fault != Fault::kNone) played_[fault]++;
      bool answers =
          fault == Fault::kNone || fault == Fault::kSlowTrickle || fault == Fault::kHugeReply;
      if (answers) good_[prompt]++;
    }
    std::string text = answer_(prompt);
    bool good = false;
    bool keep = true;
    switch (fault) {
      case Fault::kNone:
        good = SendAll(fd, Json200(ChatCompletionBody(text)));
        break;
      case Fault::kHugeReply: {
        std::string huge(2 << 20, 'x');
        for (size_t i = 79; i < huge.size(); i += 80) huge[i] = '\n';
        good = SendAll(fd, Json200(ChatCompletionBody(huge + "\n" + text)));
        break;
      }
      case Fault::kSlowTrickle: {
        std::string whole = Json200(ChatCompletionBody(text));
        size_t step = whole.size() / 10 + 1;
        good = true;
        for (size_t i = 0; i < whole.size() && good; i += step) {
          if (i > 0) std::this_thread::sleep_for(std::chrono::milliseconds(20));
          good = SendAll(fd, whole.substr(i, step));
        }
        break;
      }
      case Fault::kResetMidBody: {
        std::string b = ChatCompletionBody(text);
        SendAll(fd, Response(200, "OK", "application/json", b.substr(0, b.size() / 2), b.size()));
        linger l{1, 0};  // close with RST
        setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof l);
        keep = false;
        break;
      }
      case Fault::kTruncatedBody: {
        std::string b = ChatCompletionBody(text);
        SendAll(fd, Response(200, "OK", "application/json", b.substr(0, b.size() - 20), b.size()));
        keep = false;
        break;
      }
      case Fault::kMalformedJson:
        SendAll(fd, Json200("{\"choices\": [{\"message\": {\"content\": \"Answer"));
        break;
      case Fault::kHtml502: {
        std::string page = "<html><body><h1>502 Bad Gateway</h1></body></html>";
        SendAll(fd, Response(502, "Bad Gateway", "text/html", page, page.size()));
        break;
      }
      case Fault::kHtml200: {
        std::string page = "<!DOCTYPE html><html><body>Please sign in to the network</body></html>";
        SendAll(fd, Response(200, "OK", "text/html", page, page.size()));
        break;
      }
      case Fault::kEmptyChoices:
        SendAll(fd, Json200(R"({"id":"x","object":"chat.completion","choices":[]})"));
        break;
      case Fault::kNullContent:
        SendAll(fd, Json200(R"({"id":"x","object":"chat.completion","choices":[{"index":0,)"
                            R"("message":{"role":"assistant","content":null},)"
                            R"("finish_reason":"stop"}]})"));
        break;
      case Fault::kHang: {
        // Wait for the client to give up (it closes the connection), never answering.
        char c;
        while (!stop_) {
          pollfd p{fd, POLLIN, 0};
          if (poll(&p, 1, 100) > 0 && recv(fd, &c, 1, MSG_PEEK) <= 0) break;
        }
        keep = false;
        break;
      }
      case Fault::kWrongLength: {
        std::string b = ChatCompletionBody(text);
        SendAll(fd, Response(200, "OK", "application/json", b, b.size() - 10));
        break;
      }
      case Fault::kInvalidUtf8: {
        // Serialised with a marker, then the marker replaced by raw bytes (the JSON library
        // refuses to write invalid UTF-8 itself).
        std::string b = ChatCompletionBody("Answer @BAD@ " + text);
        b.replace(b.find("@BAD@"), 5, "\xff\xfe");
        SendAll(fd, Json200(b));
        break;
      }
    }
    bool answered =
        fault == Fault::kNone || fault == Fault::kSlowTrickle || fault == Fault::kHugeReply;
    if (answered && !good) {  // the client left before the reply was out
      std::lock_guard<std::mutex> lock(mu_);
      good_[prompt]--;
    }
    if (!keep) break;
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    std::erase(open_fds_, fd);
  }
  close(fd);
}

}  // namespace plumb::testing
