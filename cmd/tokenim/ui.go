package main

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/spf13/cobra"
	"github.com/tokenim/tokenim/internal/webui"
)

func uiCmd(g *globals) *cobra.Command {
	var listen string
	cmd := &cobra.Command{
		Use:   "ui [--listen ADDR]",
		Short: "Chat in the browser: serves the local web client (this process holds the keys) and prints its URL",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := g.config()
			if err != nil {
				return err
			}
			if host, _, err := net.SplitHostPort(listen); listen != "" && (err != nil || !net.ParseIP(host).IsLoopback()) {
				return withHint(fmt.Errorf("--listen %q is not a loopback address", listen), "the UI holds your keys: it listens on 127.0.0.1 only, e.g. --listen 127.0.0.1:8430")
			}
			s, err := webui.New(webui.Options{Home: cfg.Home, NodeURL: cfg.NodeURL})
			if errors.Is(err, webui.ErrBusy) {
				return withHint(err, "open the URL the running one printed, or stop it first")
			}
			if err != nil {
				return err
			}
			defer s.Close()
			ln, url, err := s.Listen(listen)
			if err != nil {
				return err
			}
			fmt.Printf("TokenIM web client for %s\nopen: %s\n(Ctrl-C stops it)\n", cfg.Home, url)
			srv := &http.Server{Handler: s.Handler(), ReadHeaderTimeout: 10 * time.Second}
			ctx, stop := signalContext(cmd.Context())
			defer stop()
			go func() { <-ctx.Done(); srv.Close() }()
			if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				return err
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&listen, "listen", "", "address to listen on (default 127.0.0.1 on a free port)")
	return cmd
}
