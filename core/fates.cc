// What becomes of each uWSGI option spindle does not implement. A unit test
// (t/unit/test_options.cc) checks that every name in uwsgi_names.cc is
// covered: by a row of its own or by a rule here.
#include <string>

#include "core/uwsgi_names.hh"

namespace spindle::core {

namespace {

constexpr Fate N = Fate::kNoEffect;
constexpr Fate U = Fate::kUnsupported;

struct Rule {
  const char* pattern;  // a name, or "prefix*"
  FateRule rule;
};

// Reasons shared by a family of names.
constexpr const char* kPlugins = "spindle's plugins are compiled into its one binary";
constexpr const char* kEmperor = "would have run the Emperor, which manages many uWSGI instances";
constexpr const char* kCache = "would have set up uWSGI's shared in-memory cache";
constexpr const char* kSpooler = "would have run uWSGI's spooler (a queue of background tasks)";
constexpr const char* kMule = "would have run mules (helper processes for background work)";
constexpr const char* kRoute = "would have added a rule to uWSGI's internal request router";
constexpr const char* kStatic = "would have served static files from the workers";
constexpr const char* kTls = "would have terminated TLS; put nginx or another proxy in front";
constexpr const char* kLegion = "would have joined a Legion (uWSGI's clustering)";
constexpr const char* kSubscribe = "would have subscribed to a uWSGI router";
constexpr const char* kCheaper = "would have scaled the number of workers with the load; "
                                 "spindle runs --processes workers all the time";
constexpr const char* kStats = "would have served uWSGI's stats";
constexpr const char* kMetrics = "would have kept uWSGI's metrics";
constexpr const char* kJail = "would have confined the instance (jail, namespace, cgroup)";
constexpr const char* kHook = "would have run a hook action at a start-up phase spindle does "
                              "not have";
constexpr const char* kCall = "would have called a C function from a shared library";
constexpr const char* kMount = "would have mounted a filesystem";
constexpr const char* kWait = "would have waited at start-up for a file, socket or interface";
constexpr const char* kAlarm = "would have raised uWSGI alarms";
constexpr const char* kConfigFormat = "would have read a configuration file in a format "
                                      "spindle does not read (spindle reads ini files)";
constexpr const char* kCron = "would have run a command on a schedule from the master";
constexpr const char* kSignals = "would have set up uWSGI's signal framework";
constexpr const char* kOtherProto = "would have served another wire protocol; spindle serves "
                                    "HTTP (--http-socket) and uwsgi (--socket)";
constexpr const char* kModifier = "would have changed uWSGI's request modifiers";
constexpr const char* kRouter = "would have configured uWSGI's separate HTTP router process; "
                                "spindle's workers serve HTTP themselves";
constexpr const char* kNoRouter = "spindle's workers serve HTTP themselves; there is no router "
                                  "process to configure";
constexpr const char* kLogPlugins = "would have sent the log through a uWSGI log plugin; spindle "
                                    "writes to stderr or --logto";
constexpr const char* kAutoReload = "would have reloaded the workers when a Python module "
                                    "changes";
constexpr const char* kImport = "would have imported a Python module at start-up";
constexpr const char* kVenv = "would have used a Python virtualenv; spindle uses the "
                              "interpreter it was built with";
constexpr const char* kGevent = "would have run requests on gevent; use --async N (fibers) or "
                                "--greenlet";
constexpr const char* kPyShell = "would have run interactive or one-off Python code";
constexpr const char* kBuild = "would have printed uWSGI build information";
constexpr const char* kSockets = "spindle's sockets already behave this way";
constexpr const char* kControl = "would have sent a command to a running uWSGI instance";
constexpr const char* kLimits = "would have set a resource limit or priority on the processes";
constexpr const char* kWebsocket = "would have tuned uWSGI's WebSocket support";
constexpr const char* kBuffering = "would have buffered request bodies before the app runs";
constexpr const char* kThreads = "would have set the stack size of each worker thread; "
                                 "spindle's threads (--threads N) use the system's";
constexpr const char* kTouch = "would have acted when a file is touched";
constexpr const char* kReloadOn = "would have recycled workers on a condition spindle does not "
                                  "watch";
constexpr const char* kLazy = "would have loaded the app in each worker after fork instead of "
                              "once in the master";
constexpr const char* kMountApp = "would have mounted another app at a URL prefix";
constexpr const char* kHarakiriExtra = "would have tuned harakiri beyond --harakiri SECONDS";
constexpr const char* kLogTuning = "would have tuned uWSGI's log handling";

const Rule kRules[] = {
    // --- sockets and protocols ---------------------------------------------
    {"suwsgi-socket", {U, kTls}},
    {"ssl-socket", {U, kTls}},
    {"https-socket*", {U, kTls}},
    {"https*", {U, kTls}},
    {"ssl-*", {U, kTls}},
    {"sni*", {U, kTls}},
    {"http-socket-modifier*", {U, kModifier}},
    {"http-path-info-no-decode-slashes", {U, "would have kept %2F encoded in PATH_INFO"}},
    {"fastcgi-*", {U, kOtherProto}},
    {"scgi-*", {U, kOtherProto}},
    {"raw-*", {U, kOtherProto}},
    {"puwsgi-socket", {U, kOtherProto}},
    {"protocol", {U, kOtherProto}},
    {"socket-protocol", {U, kOtherProto}},
    {"shared-socket", {U, "would have bound a socket for sharing by number"}},
    {"undeferred-shared-socket", {U, "would have bound a socket for sharing by number"}},
    {"map-socket", {U, "would have mapped sockets to particular workers"}},
    {"freebind", {U, "would have bound to an address not yet on this host (IP_FREEBIND)"}},
    {"zerg*", {U, "would have attached to a zerg server's sockets"}},
    {"tcp-nodelay", {N, "spindle always sets TCP_NODELAY on TCP connections"}},
    {"so-keepalive", {U, "would have set SO_KEEPALIVE on client connections"}},
    {"so-send-timeout", {U, "would have set SO_SNDTIMEO; see --socket-timeout"}},
    {"socket-send-timeout", {U, "would have set SO_SNDTIMEO; see --socket-timeout"}},
    {"so-write-timeout", {U, "would have set SO_SNDTIMEO; see --socket-timeout"}},
    {"socket-write-timeout", {U, "would have set SO_SNDTIMEO; see --socket-timeout"}},
    {"socket-sndbuf", {U, "would have set SO_SNDBUF"}},
    {"socket-rcvbuf", {U, "would have set SO_RCVBUF"}},
    {"tcp-fast-open*", {U, "would have enabled TCP Fast Open"}},
    {"tcp-fastopen*", {U, "would have enabled TCP Fast Open"}},
    {"enable-proxy-protocol", {U, "would have read the PROXY protocol header"}},
    {"no-fd-passing", {N, kSockets}},
    {"close-on-exec", {N, "spindle's sockets are always close-on-exec"}},
    {"close-on-exec2", {N, "spindle's sockets are always close-on-exec"}},
    {"thunder-lock", {N, "spindle's workers accept with EPOLLEXCLUSIVE, which already wakes "
                         "one worker per connection"}},
    {"thunder-lock-watchdog", {N, "spindle's workers accept with EPOLLEXCLUSIVE; there is no "
                                  "lock to watch"}},

    // --- processes, master, lifecycle ---------------------------------------
    {"harakiri-verbose", {N, "spindle's harakiri line already names the request"}},
    {"harakiri-*", {U, kHarakiriExtra}},
    {"no-harakiri-*", {U, kHarakiriExtra}},
    {"backtrace-depth", {U, "would have set the depth of C backtraces"}},
    {"mule*", {U, kMule}},
    {"mules", {U, kMule}},
    {"farm", {U, kMule}},
    {"die-on-term", {N, "SIGTERM always stops spindle gracefully (uWSGI 2.0 reloaded)"}},
    {"reaper", {N, "the master always reaps its children"}},
    {"no-orphans", {N, "workers always die with their master (PR_SET_PDEATHSIG)"}},
    {"min-worker-lifetime", {U, "would have kept a worker alive a minimum time before "
                                "recycling it"}},
    {"exit-on-reload", {U, "would have exited instead of reloading"}},
    {"idle", {U, "would have put the instance to sleep when idle"}},
    {"die-on-idle", {U, "would have stopped the instance when idle"}},
    {"die-on-no-workers", {U, "would have stopped the instance when no worker is left"}},
    {"cheap", {U, kCheaper}},
    {"cheaper*", {U, kCheaper}},
    {"lazy", {U, kLazy}},
    {"lazy-apps", {U, kLazy}},
    {"heartbeat", {U, kEmperor}},
    {"zeus", {U, kEmperor}},
    {"emperor*", {U, kEmperor}},
    {"early-emperor", {U, kEmperor}},
    {"vassal*", {U, kEmperor}},
    {"imperial-monitor*", {U, kEmperor}},
    {"hook-emperor-*", {U, kEmperor}},
    {"hook-as-emperor*", {U, kEmperor}},
    {"hook-as-vassal*", {U, kEmperor}},
    {"hook-as-on-*", {U, kEmperor}},
    {"force-gateway", {U, "would have started gateway processes without a master"}},
    {"check-interval", {N, "spindle's master checks its workers every 250 ms"}},
    {"forkbomb-delay", {U, "would have slowed respawns down by a fixed delay; spindle backs "
                           "off exponentially"}},
    {"binary-path", {N, "spindle re-executes /proc/self/exe on reload"}},
    {"privileged-binary-patch*", {U, "would have exec'd another binary before dropping "
                                     "privileges"}},
    {"unprivileged-binary-patch*", {U, "would have exec'd another binary after dropping "
                                       "privileges"}},
    {"worker-exec*", {U, "would have exec'd a program in place of each worker"}},
    {"refork*", {U, kJail}},
    {"re-fork*", {U, kJail}},
    {"fork-socket", {U, "would have waited for a fork server"}},
    {"fork-server", {U, "would have run a fork server"}},
    {"master-fifo", {U, "would have read commands from a FIFO"}},
    {"notify-socket", {U, "would have sent status messages to a unix socket"}},
    {"stop", {U, kControl}},
    {"reload", {U, kControl}},
    {"pause", {U, kControl}},
    {"resume", {U, kControl}},
    {"connect-and-read", {U, kControl}},
    {"extract", {U, kControl}},
    {"weight", {U, kSubscribe}},
    {"auto-weight", {U, kSubscribe}},
    {"no-server", {U, "would have started without any socket"}},
    {"command-mode", {U, "would have run without servers, for commands"}},
    {"skip-atexit*", {U, "would have skipped the app's atexit handlers"}},
    {"skip-zero", {N, "spindle never treats fd 0 as a socket"}},
    {"use-abort", {U, "would have called abort() on fatal errors"}},
    {"touch-chain-reload", {U, "would have reloaded workers one at a time when a file is "
                               "touched; see --touch-reload"}},
    {"touch-exec", {U, kTouch}},
    {"touch-signal", {U, kTouch}},
    {"touch-mules-reload", {U, kMule}},
    {"touch-spoolers-reload", {U, kSpooler}},
    {"touch-logrotate", {U, kTouch}},
    {"fs-*", {U, kTouch}},
    {"check-mountpoint", {U, kMount}},
    {"mountpoint-check", {U, kMount}},
    {"check-mount", {U, kMount}},
    {"mount-check", {U, kMount}},
    {"propagate-touch", {N, "touch-reload is always seen by the master"}},
    {"reload-on-as", {U, kReloadOn}},
    {"evil-reload-on-as", {U, kReloadOn}},
    {"reload-on-uss", {U, kReloadOn}},
    {"reload-on-pss", {U, kReloadOn}},
    {"reload-on-fd", {U, kReloadOn}},
    {"brutal-reload-on-fd", {U, kReloadOn}},
    {"mem-collector-freq", {N, "spindle's master reads the workers' memory once a second"}},
    {"reload-on-exception*", {U, "would have recycled a worker after an app exception"}},
    {"mule-reload-mercy", {U, kMule}},

    // --- identity, privileges, confinement ----------------------------------
    {"add-gid", {U, "would have added supplementary groups"}},
    {"immediate-uid", {U, "would have changed user while reading the options"}},
    {"immediate-gid", {U, "would have changed group while reading the options"}},
    {"no-initgroups", {U, "would have skipped initgroups() when changing user"}},
    {"cap", {U, "would have kept Linux capabilities across the user change"}},
    {"chroot", {U, kJail}},
    {"pivot-root", {U, kJail}},
    {"pivot_root", {U, kJail}},
    {"unshare*", {U, kJail}},
    {"setns*", {U, kJail}},
    {"jail*", {U, kJail}},
    {"jid*", {U, kJail}},
    {"libjail", {U, kJail}},
    {"namespace*", {U, kJail}},
    {"ns", {U, kJail}},
    {"ns-net", {U, kJail}},
    {"cgroup*", {U, kJail}},
    {"master-as-root", {U, "would have kept the master running as root"}},
    {"drop-after-init", {U, "would have dropped privileges after the plugins start"}},
    {"drop-after-apps", {U, "would have dropped privileges after loading the app"}},
    {"limit-nproc", {U, kLimits}},
    {"prio", {U, kLimits}},
    {"cpu-affinity", {U, kLimits}},
    {"never-swap", {U, "would have locked all memory (mlockall)"}},
    {"ksm", {U, "would have marked memory for kernel samepage merging"}},
    {"flock*", {U, "would have locked a file at start-up"}},

    // --- hooks ------------------------------------------------------------
    {"hook-*", {U, kHook}},
    {"exec-*", {U, kHook}},
    {"call-*", {U, kCall}},
    {"mount-*", {U, kMount}},
    {"umount-*", {U, kMount}},
    {"wait-*", {U, kWait}},
    {"after-request-hook", {U, kCall}},
    {"after-request-call", {U, kCall}},
    {"dlopen", {U, kCall}},
    {"print-sym", {U, kCall}},
    {"print-symbol", {U, kCall}},
    {"attach-control-daemon", {U, "would have run a side process that controls the instance"}},
    {"smart-attach-daemon*", {U, "would have run and watched a side process through its "
                                 "pidfile; see --attach-daemon"}},
    {"legion-*", {U, kLegion}},
    {"legion", {U, kLegion}},
    {"daemons-honour-stdin", {U, "would have passed stdin to attached daemons"}},
    {"attach-daemon2", {U, "would have run a side process with keyword options; see "
                           "--attach-daemon"}},
    {"cron*", {U, kCron}},
    {"unique-cron*", {U, kCron}},
    {"unique-legion-cron", {U, kLegion}},

    // --- config files ----------------------------------------------------
    {"xmlconfig", {U, kConfigFormat}},
    {"xml", {U, kConfigFormat}},
    {"yaml", {U, kConfigFormat}},
    {"yml", {U, kConfigFormat}},
    {"json", {U, kConfigFormat}},
    {"js", {U, kConfigFormat}},
    {"fallback-config", {U, "would have started again with another config on failure"}},
    {"declare-option*", {U, "would have declared a custom option"}},
    {"resolve", {U, "would have set a placeholder to a host's resolved address"}},
    {"blacklist", {U, "would have forbidden options"}},
    {"end-blacklist", {U, "would have forbidden options"}},
    {"whitelist", {U, "would have allowed only some options"}},
    {"end-whitelist", {U, "would have allowed only some options"}},
    {"inherit", {U, "would have read a template config first"}},
    {"inject-before", {U, "would have prepended text to config files"}},
    {"inject-after", {U, "would have appended text to config files"}},
    {"get", {U, "would have printed an option's value and exited"}},
    {"if-hostname-match", {U, "would have matched the hostname against a regexp"}},
    {"if-not-hostname-match", {U, "would have matched the hostname against a regexp"}},
    {"dump-options", {U, kBuild}},
    {"show-config", {U, "would have printed the configuration at start-up"}},
    {"cflags", {U, kBuild}},
    {"dot-h", {U, kBuild}},
    {"config-py", {U, kBuild}},
    {"build-plugin", {U, kBuild}},
    {"binary-append-data", {U, kBuild}},
    {"mode", {N, "a value for %(mode) placeholders only"}},

    // --- plugins ---------------------------------------------------------
    {"plugins", {N, kPlugins}},
    {"plugin", {N, kPlugins}},
    {"need-plugins", {N, kPlugins}},
    {"need-plugin", {N, kPlugins}},
    {"plugins-dir", {N, kPlugins}},
    {"plugin-dir", {N, kPlugins}},
    {"plugins-list", {U, kBuild}},
    {"plugin-list", {U, kBuild}},
    {"autoload", {N, kPlugins}},
    {"loop-list", {U, "would have listed the loop engines; see --help"}},
    {"loops-list", {U, "would have listed the loop engines; see --help"}},
    {"allowed-modifiers", {U, kModifier}},
    {"remap-modifier", {U, kModifier}},

    // --- IPC, caches, queues, spooler, signals -------------------------------
    {"locks", {U, "would have allocated user locks"}},
    {"lock-engine", {U, "would have chosen uWSGI's lock engine"}},
    {"ftok", {U, "would have named SysV IPC objects"}},
    {"persistent-ipcsem", {N, "spindle uses no SysV semaphores"}},
    {"sharedarea", {U, "would have allocated a shared memory area"}},
    {"safe-fd", {U, "would have kept a file descriptor open across reloads"}},
    {"fd-safe", {U, "would have kept a file descriptor open across reloads"}},
    {"cache*", {U, kCache}},
    {"add-cache-item", {U, kCache}},
    {"load-file-in-cache*", {U, kCache}},
    {"queue*", {U, "would have set up uWSGI's shared queue"}},
    {"spooler*", {U, kSpooler}},
    {"signal*", {U, kSignals}},
    {"signals-bufsize", {U, kSignals}},
    {"timer", {U, kSignals}},
    {"rbtimer", {U, kSignals}},
    {"rpc-max", {U, "would have sized uWSGI's RPC table"}},
    {"udp", {U, "would have listened for UDP log/SNMP packets"}},
    {"multicast*", {U, "would have joined a multicast group"}},
    {"snmp*", {U, "would have run an SNMP agent"}},
    {"subscri*", {U, kSubscribe}},
    {"st", {U, kSubscribe}},
    {"unsubscribe-on-graceful-reload", {U, kSubscribe}},
    {"start-unsubscribed", {U, kSubscribe}},
    {"clock", {U, "would have chosen uWSGI's clock source"}},
    {"clock-list", {U, kBuild}},
    {"clocks-list", {U, kBuild}},

    // --- requests ----------------------------------------------------------
    {"max-vars", {N, "spindle's request variables are limited by --buffer-size only"}},
    {"max-apps", {U, "would have limited the number of apps per worker"}},
    {"dynamic-apps", {U, "would have let the web server name the app per request"}},
    {"cgi-mode", {U, "would have answered in CGI mode"}},
    {"profiler", {U, "would have profiled the app"}},
    {"memory-report", {U, "would have logged each request's memory use"}},
    {"post-buffering", {N, "wsgi.input reads park only the request's own core, so a slow "
                           "body never blocks the worker"}},
    {"post-buffering-bufsize", {N, "see post-buffering"}},
    {"body-read-warning", {N, "bodies are read as the app asks for them"}},
    {"upload-progress", {U, "would have written upload progress to files"}},
    {"no-default-app", {U, "would have refused requests not matching a mounted app"}},
    {"manage-script-name", {U, "would have moved the mount prefix from PATH_INFO to "
                               "SCRIPT_NAME"}},
    {"ignore-script-name", {U, "would have ignored SCRIPT_NAME when choosing the app"}},
    {"catch-exceptions", {U, "would have shown app exceptions to the client; spindle never "
                             "does"}},
    {"exception-handler", {U, "would have run a handler on app exceptions"}},
    {"vhost*", {U, "would have chosen the app by virtual host"}},
    {"route*", {U, kRoute}},
    {"final-route*", {U, kRoute}},
    {"error-route*", {U, kRoute}},
    {"response-route*", {U, kRoute}},
    {"router-list", {U, kRoute}},
    {"routers-list", {U, kRoute}},
    {"error-page-*", {U, "would have served a static error page"}},
    {"websocket*", {U, kWebsocket}},
    {"chunked-input-*", {U, "would have limited uWSGI's chunked input API"}},
    {"add-header", {U, "would have added a header to every response"}},
    {"rem-header", {U, "would have removed a header from every response"}},
    {"del-header", {U, "would have removed a header from every response"}},
    {"collect-header", {U, "would have copied a response header into a variable"}},
    {"response-header-collect", {U, "would have copied a response header into a variable"}},
    {"pull-header", {U, "would have moved a response header into a variable"}},
    {"check-static*", {U, kStatic}},
    {"static-*", {U, kStatic}},
    {"mimefile", {U, kStatic}},
    {"mime-file", {U, kStatic}},
    {"honour-range", {U, kStatic}},
    {"file-serve-mode", {U, kStatic}},
    {"fileserve-mode", {U, kStatic}},
    {"check-cache", {U, kCache}},
    {"offload-threads", {N, "responses are written by the worker's event loop without "
                            "blocking; there is nothing to offload"}},
    {"offload-thread", {N, "responses are written by the worker's event loop without "
                           "blocking; there is nothing to offload"}},
    {"disable-sendfile", {N, "spindle writes files through the event loop"}},
    {"ignore-sigpipe", {N, "SIGPIPE is always ignored; a write to a closed connection fails "
                           "that request only"}},
    {"ignore-write-errors", {N, "a write error fails that request only and is logged once"}},
    {"write-errors-*", {N, "a write error fails that request only and is logged once"}},
    {"disable-write-exception", {N, "a write error fails that request only and is logged once"}},
    {"response-headers-limit", {N, "response headers are not limited"}},
    {"disable-async-warn-on-queue-full", {N, "spindle queues connections in arrival order "
                                             "without warning"}},
    {"honour-stdin", {N, "spindle leaves stdin as it found it"}},
    {"enable-metrics", {U, kMetrics}},
    {"metric*", {U, kMetrics}},
    {"alarm-metric", {U, kMetrics}},
    {"stats*", {U, kStats}},
    {"thread-stacksize", {U, kThreads}},
    {"threads-stacksize", {U, kThreads}},
    {"thread-stack-size", {U, kThreads}},
    {"threads-stack-size", {U, kThreads}},
    {"enable-threads", {N, "Python threads always work: the GIL is always initialised"}},
    {"no-threads-wait", {N, "spindle does not wait for the app's threads at exit"}},
    {"single-interpreter", {N, "spindle always runs one interpreter per worker"}},
    {"need-app", {N, "spindle never starts without an app"}},
    {"mount", {U, kMountApp}},
    {"worker-mount", {U, kMountApp}},

    // --- logging ----------------------------------------------------------
    {"log-syslog", {U, kLogPlugins}},
    {"log-socket", {U, kLogPlugins}},
    {"worker-logger*", {U, kLogPlugins}},
    {"logger-list", {U, kBuild}},
    {"loggers-list", {U, kBuild}},
    {"log-master-*", {N, "the log master's pipe is a stream, and it keeps each process's "
                         "lines whole"}},
    {"log-encoder", {U, kLogTuning}},
    {"log-req-encoder", {U, kLogTuning}},
    {"worker-log-*", {U, kLogTuning}},
    {"log-drain", {U, kLogTuning}},
    {"log-filter", {U, kLogTuning}},
    {"log-route", {U, kLogTuning}},
    {"log-req-route", {U, kLogTuning}},
    {"log-truncate", {U, "would have truncated the log file at start-up"}},
    {"log-maxsize", {U, "would have rotated the log file at a size"}},
    {"log-backupname", {U, "would have named the rotated log file"}},
    {"log-prefix", {U, "would have prefixed every log line"}},
    {"log-big", {U, "would have logged only responses bigger than N bytes"}},
    {"log-sendfile", {U, "would have logged only sendfile responses"}},
    {"log-ioerror", {N, "requests that fail on I/O are always logged"}},
    {"log-micros", {U, "would have logged response times in microseconds"}},
    {"log-zero", {U, "would have logged only responses with no body"}},
    {"logfile-chown", {U, "would have changed the log file's owner"}},
    {"alarm*", {U, kAlarm}},
    {"segfault-alarm", {U, kAlarm}},
    {"backlog-alarm", {U, kAlarm}},
    {"lq-alarm", {U, kAlarm}},
    {"listen-queue-alarm", {U, kAlarm}},
    {"log-alarm", {U, kAlarm}},
    {"not-log-alarm", {U, kAlarm}},
    {"not-alarm-log", {U, kAlarm}},

    // --- environment -----------------------------------------------------
    {"force-cwd", {U, "would have faked the starting directory"}},
    {"binsh", {U, "would have chosen the shell for hooks and daemons (spindle uses /bin/sh)"}},
    {"ienv", {U, "would have set an environment variable without touching os.environ"}},
    {"envdir", {U, "would have read environment variables from a directory"}},
    {"early-envdir", {U, "would have read environment variables from a directory"}},
    {"file-write", {U, "would have written a file at start-up"}},
    {"pcre-jit", {U, "would have enabled PCRE JIT for routing"}},

    // --- Python plugin ---------------------------------------------------
    {"eval", {U, "would have loaded the app from Python code in the option"}},
    {"test", {U, "would have tested whether a module imports"}},
    {"home", {U, kVenv}},
    {"virtualenv", {U, kVenv}},
    {"venv", {U, kVenv}},
    {"pyhome", {U, kVenv}},
    {"py-programname", {U, "would have set Python's program name"}},
    {"py-program-name", {U, "would have set Python's program name"}},
    {"pymodule-alias", {U, "would have aliased a Python module"}},
    {"post-pymodule-alias", {U, "would have aliased a Python module"}},
    {"import", {U, kImport}},
    {"pyimport", {U, kImport}},
    {"py-import", {U, kImport}},
    {"python-import", {U, kImport}},
    {"shared-import", {U, kImport}},
    {"shared-pyimport", {U, kImport}},
    {"shared-py-import", {U, kImport}},
    {"shared-python-import", {U, kImport}},
    {"early-pyimport", {U, kImport}},
    {"early-python-import", {U, kImport}},
    {"early-python", {U, "would have initialised Python before the options are read"}},
    {"early-pythonpath", {U, "would have extended sys.path before the options are read"}},
    {"early-python-path", {U, "would have extended sys.path before the options are read"}},
    {"pyargv", {U, "would have set sys.argv for the app"}},
    {"optimize", {U, "would have set Python's optimisation level (-O)"}},
    {"pecan", {U, "would have loaded a Pecan app"}},
    {"paste-logger", {U, "would have configured logging from the paste file"}},
    {"paste-name", {U, "would have chosen the paste app section"}},
    {"web3", {U, "would have loaded a Web3 app"}},
    {"pump", {U, "would have loaded a Pump app"}},
    {"wsgi-lite", {U, "would have loaded a WSGI-lite app"}},
    {"ini-paste", {U, "would have read the [uwsgi] section and the app of a paste file; "
                      "use --ini FILE and --paste config:FILE"}},
    {"ini-paste-logged", {U, "would have read the [uwsgi] section and the app of a paste file; "
                             "use --ini FILE and --paste config:FILE"}},
    {"reload-os-env", {N, "each reload re-executes spindle, which reads the environment anew"}},
    {"no-site", {U, "would have skipped importing Python's site module"}},
    {"pyshell*", {U, kPyShell}},
    {"python", {U, kPyShell}},
    {"py", {U, kPyShell}},
    {"pyrun", {U, kPyShell}},
    {"python-raw", {U, kPyShell}},
    {"py-tracebacker", {U, "would have served Python tracebacks of the workers on a socket"}},
    {"py-auto-reload*", {U, kAutoReload}},
    {"py-autoreload", {U, kAutoReload}},
    {"python-auto-reload", {U, kAutoReload}},
    {"python-autoreload", {U, kAutoReload}},
    {"wsgi-env-behaviour", {U, "would have changed how the environ is kept between requests"}},
    {"wsgi-env-behavior", {U, "would have changed how the environ is kept between requests"}},
    {"start_response-nodelay", {U, "would have sent headers as soon as start_response runs"}},
    {"wsgi-strict", {U, "would have refused non-PEP 3333 responses"}},
    {"wsgi-accept-buffer", {N, "spindle accepts any buffer-protocol object as a body chunk"}},
    {"wsgi-accept-buffers", {N, "spindle accepts any buffer-protocol object as a body chunk"}},
    {"wsgi-disable-file-wrapper", {U, "would have removed wsgi.file_wrapper from the environ"}},
    {"python-version", {U, kBuild}},
    {"py-sharedarea", {U, "would have shared a Python bytearray between workers"}},
    {"py-call-osafterfork", {N, "spindle always runs Python's after-fork handlers"}},
    {"py-call-uwsgi-fork-hooks", {N, "spindle always runs Python's after-fork handlers"}},
    {"python-worker-override", {U, "would have replaced the worker with a Python script"}},
    {"wsgi-manage-chunked-input", {N, "chunked request bodies are always de-chunked into "
                                      "wsgi.input"}},
    {"py-master-check-signals", {N, "the master handles its signals in C"}},
    {"py-executable", {U, "would have set sys.executable"}},
    {"py-sys-executable", {U, "would have set sys.executable"}},

    // --- HTTP router, gevent, other loops ------------------------------------
    {"httprouter", {U, kRouter}},
    {"http-to", {U, kRouter}},
    {"http-to-https", {U, kTls}},
    {"http-processes", {N, kNoRouter}},
    {"http-workers", {N, kNoRouter}},
    {"http-var", {U, kRouter}},
    {"http-zerg", {U, kRouter}},
    {"http-fallback", {U, kRouter}},
    {"http-modifier*", {U, kModifier}},
    {"http-use-*", {U, kRouter}},
    {"http-events", {N, kNoRouter}},
    {"http-subscription-*", {U, kSubscribe}},
    {"http-manage-expect", {N, "Expect: 100-continue is always answered"}},
    {"http-keepalive", {N, "HTTP/1.1 keep-alive is always on (see --http-timeout)"}},
    {"http-auto-chunked", {N, "responses without Content-Length are always sent chunked on "
                              "HTTP/1.1"}},
    {"http-auto-gzip", {U, "would have gzipped responses"}},
    {"http-raw-body", {U, kRouter}},
    {"http-websockets", {U, kWebsocket}},
    {"http-chunked-input", {N, "chunked request bodies are always de-chunked"}},
    {"http-gracetime", {N, kNoRouter}},
    {"http-quiet", {N, kNoRouter}},
    {"http-cheap", {N, kNoRouter}},
    {"http-stats*", {U, kStats}},
    {"http-ss", {U, kStats}},
    {"http-harakiri", {U, kRouter}},
    {"http-stud-prefix", {U, kRouter}},
    {"http-uid", {N, kNoRouter}},
    {"http-gid", {N, kNoRouter}},
    {"http-resubscribe", {U, kSubscribe}},
    {"http-buffer-size", {N, "see --buffer-size, which bounds the request head"}},
    {"http-server-name-as-http-host", {U, kRouter}},
    {"http-headers-timeout", {N, "see --http-timeout, which bounds the wait for a head"}},
    {"http-connect-timeout", {N, kNoRouter}},
    {"http-manage-source", {U, kRouter}},
    {"http-enable-proxy-protocol", {U, "would have read the PROXY protocol header"}},
    {"http-backend-http", {U, kRouter}},
    {"http-manage-rtsp", {U, kRouter}},
    {"http-post-buffering*", {U, kBuffering}},
    {"gevent*", {U, kGevent}},
    {"ugreen*", {U, kGevent}},
    {"asyncio", {U, "would have run requests on asyncio; see --tornado N"}},
    {"exit", {U, "would have exited at once"}},

    // --- deployment options not implemented yet --------------------------------
    {"no-defer-accept", {U, "would have turned off TCP_DEFER_ACCEPT"}},
    {"limit-as", {U, kLimits}},
    {"max-fd", {U, kLimits}},
    {"touch-workers-reload", {U, kTouch}},
    {"log-reopen", {N, "every reload reopens the log files"}},
    {"chdir2", {U, "would have changed directory after loading the app"}},
    {"unenv", {U, "would have removed an environment variable"}},
};

bool matches(const char* pattern, std::string_view name, std::size_t* len) {
  std::string_view p(pattern);
  if (!p.empty() && p.back() == '*') {
    p.remove_suffix(1);
    if (name.substr(0, p.size()) != p) return false;
    *len = p.size();
    return true;
  }
  *len = p.size() + 1;  // an exact rule beats any prefix
  return p == name;
}

}  // namespace

const FateRule* fate_of(std::string_view name) {
  const FateRule* best = nullptr;
  std::size_t best_len = 0;
  for (const Rule& r : kRules) {
    std::size_t len = 0;
    if (matches(r.pattern, name, &len) && len > best_len) {
      best = &r.rule;
      best_len = len;
    }
  }
  return best;
}

}  // namespace spindle::core
