// Command aula is the aula Matrix homeserver. Run "aula --help" for usage.
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/aula-chat/aula/config"
	"github.com/aula-chat/aula/internal/app"
	"github.com/aula-chat/aula/internal/devidp"
	"github.com/aula-chat/aula/internal/logging"
	"github.com/aula-chat/aula/internal/mxerr"
)

const usage = `aula: a Matrix homeserver for universities.

Usage:
  aula --config FILE          serve with the configuration in FILE
  aula --dev                  serve a development setup on http://localhost:8008
                              (SQLite in ./aula-data, open registration)
  aula generate-config --server-name NAME [--listen ADDR] [--data-dir DIR] [--database URL]
                              print a complete, commented configuration
  aula check-config --config FILE
                              validate FILE and report every problem
  aula create-account --config FILE --user LOCALPART [--admin]
                              create a password account; the password is read from stdin
  aula notice send --config FILE (--user USER | --all-users) --text TEXT
                              send a server notice into users' notices rooms
  aula consent status --config FILE --user USER
                              show which terms-of-use version a user agreed to, and when
  aula media purge --config FILE --older-than 90d
                              delete media not downloaded for that long (avatars are kept)
  aula group create --config FILE --name NAME --members USER,USER,... [--topic TEXT] [--space] [--creator USER]
                              create an invite-only room (or space) with the members already joined
  aula export-user --config FILE --user USER --out FILE.zip
                              write everything stored about a user to a zip of JSON files

Every configuration key can also be set in the environment as AULA_ + the
key path in upper case with _ for dots, e.g. AULA_DATABASE.
`

func main() {
	err := run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	if errors.Is(err, flag.ErrHelp) { // -h or --help: the usage is printed
		return
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "aula:", err)
		os.Exit(1)
	}
}

// run dispatches a command line; it is main without the exit.
func run(args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		switch args[0] {
		case "generate-config":
			return generateConfig(args[1:], stdout, stderr)
		case "check-config":
			return checkConfig(args[1:], stdout, stderr)
		case "create-account":
			return createAccount(args[1:], stdin, stdout, stderr)
		case "notice": // server notices (notice.go)
			return noticeCommand(args[1:], stdout, stderr)
		case "consent": // terms-of-service consent (consent.go)
			return consentCommand(args[1:], stdout, stderr)
		case "media": // media repository maintenance (media.go)
			return mediaCommand(args[1:], stdout, stderr)
		case "group": // admin-prepared groups (group.go)
			return group(args[1:], stdout, stderr)
		case "export-user": // data export (export.go)
			return exportUser(args[1:], stdout, stderr)
		case "help":
			fmt.Fprint(stdout, usage)
			return nil
		default:
			return fmt.Errorf("unknown command %q\n\n%s", args[0], usage)
		}
	}
	return serve(args, stderr)
}

func newFlagSet(name string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, usage) }
	return fs
}

func serve(args []string, stderr io.Writer) error {
	fs := newFlagSet("aula", stderr)
	path := fs.String("config", "", "configuration file")
	dev := fs.Bool("dev", false, "serve the development setup")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q\n\n%s", fs.Arg(0), usage)
	}
	var cfg *config.Config
	var err error
	switch {
	case *dev && *path != "":
		return fmt.Errorf("use either --dev or --config, not both\n\n%s", usage)
	case *dev:
		cfg, err = config.LoadDev()
	case *path != "":
		cfg, err = config.Load(*path)
	default:
		return fmt.Errorf("no configuration: use --config FILE or --dev\n\n%s", usage)
	}
	if err != nil {
		return err
	}
	log := logging.New(stderr, cfg.Log)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	// After the first signal, a second one ends a slow shutdown at once.
	context.AfterFunc(ctx, stop)
	// --dev only: the development identity provider (devidp.go).
	var idp *devidp.Provider
	if *dev {
		if idp, err = addDevIdP(cfg); err != nil {
			return err
		}
	}
	a, err := app.New(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer a.Close()
	if idp != nil {
		a.Handler = idp.Mount(a.Handler)
	}
	return a.Serve(ctx, func(addr net.Addr) {
		log.Info("aula is serving", "server_name", cfg.ServerName, "listen", addr.String(), "database", a.DB.Engine())
		if *dev {
			fmt.Fprintf(stderr, "\n  aula (development setup) is running.\n  Point Element or Cinny at %s\n  and register an account there, or sign in with single sign-on\n  (development identity provider: alice/alice, bob/bob, carol/carol).\n\n", cfg.PublicBaseURL)
		}
	})
}

func generateConfig(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("generate-config", stderr)
	var o config.GenerateOptions
	fs.StringVar(&o.ServerName, "server-name", "", "the server name (domain of user IDs)")
	fs.StringVar(&o.Listen, "listen", "", "listen address (default localhost:8008)")
	fs.StringVar(&o.DataDir, "data-dir", "", "data directory (default /var/lib/aula)")
	fs.StringVar(&o.Database, "database", "", "database URL (default SQLite in the data directory)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if o.ServerName == "" {
		return errors.New("generate-config: --server-name is required")
	}
	out, err := config.Generate(o)
	if err != nil {
		return err
	}
	_, err = stdout.Write(out)
	return err
}

func checkConfig(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("check-config", stderr)
	path := fs.String("config", "", "configuration file")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *path == "" {
		return errors.New("check-config: --config FILE is required")
	}
	if _, err := config.Load(*path); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%s: OK\n", *path)
	return nil
}

func createAccount(args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs := newFlagSet("create-account", stderr)
	path := fs.String("config", "", "configuration file")
	user := fs.String("user", "", "localpart of the new account")
	admin := fs.Bool("admin", false, "make the account a server admin")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *path == "" || *user == "" {
		return errors.New("create-account: --config FILE and --user LOCALPART are required")
	}
	cfg, err := config.Load(*path)
	if err != nil {
		return err
	}
	password, err := readPassword(stdin)
	if err != nil {
		return err
	}
	ctx := context.Background()
	log := logging.New(stderr, cfg.Log)
	a, err := app.New(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer a.Close()
	localpart := *user
	if rest, ok := strings.CutPrefix(localpart, "@"); ok { // a full user ID of this server
		lp, server, _ := strings.Cut(rest, ":")
		if server != cfg.ServerName {
			return fmt.Errorf("create-account: %s is not a user ID of this server (%s)", *user, cfg.ServerName)
		}
		localpart = lp
	}
	userID, err := a.Auth.CreateAccount(ctx, strings.ToLower(localpart), password, *admin, "")
	if e, ok := mxerr.As(err); ok {
		return fmt.Errorf("create-account: %s", e.Msg)
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "created %s\n", userID)
	return nil
}

// openApp loads the configuration at path and builds the server on it
// without serving, for the subcommands that work on the database directly.
func openApp(ctx context.Context, path string, stderr io.Writer) (*app.App, error) {
	cfg, err := config.Load(path)
	if err != nil {
		return nil, err
	}
	return app.New(ctx, cfg, logging.New(stderr, cfg.Log))
}

// readPassword reads the first line of stdin as the password.
func readPassword(stdin io.Reader) (string, error) {
	line, err := bufio.NewReader(stdin).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", fmt.Errorf("read password: %w", err)
	}
	password := strings.TrimRight(line, "\r\n")
	if password == "" {
		return "", errors.New("create-account: no password on stdin (pipe it in, e.g. echo secret | aula create-account …)")
	}
	return password, nil
}
