package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"
	"github.com/vbauerster/mpb/v8"
	"github.com/vbauerster/mpb/v8/decor"
	"golang.org/x/term"
)

// progressBar draws a byte-count bar on stderr and returns the callback
// that advances it and a func that waits for the last frame.
func progressBar(label string) (func(done, total int64), func()) {
	opts := []mpb.ContainerOption{mpb.WithOutput(os.Stderr), mpb.WithWidth(100)}
	if !term.IsTerminal(int(os.Stderr.Fd())) {
		opts = append(opts, mpb.WithAutoRefresh())
	}
	p := mpb.New(opts...)
	var bar *mpb.Bar
	update := func(done, total int64) {
		if bar == nil {
			bar = p.AddBar(total,
				mpb.PrependDecorators(decor.Name(label+" "), decor.CountersKibiByte("% .1f / % .1f")),
				mpb.AppendDecorators(decor.Percentage(), decor.Name(" "), decor.AverageSpeed(decor.SizeB1024(0), "% .1f")))
		}
		bar.SetCurrent(done)
	}
	wait := func() {
		if bar != nil && !bar.Completed() {
			bar.Abort(false)
		}
		p.Wait()
	}
	return update, wait
}

func fileCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "file", Short: "Download files shared with you"}
	var out string
	get := &cobra.Command{
		Use:   "get MESSAGE_ID [--out PATH]",
		Short: "Download and verify the file a message shares",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.open(cmd.Context())
			if err != nil {
				return err
			}
			defer c.Close()
			if _, err := c.Sync(cmd.Context()); err != nil {
				return err
			}
			update, wait := progressBar("download")
			path, err := c.FetchFile(cmd.Context(), args[0], out, update)
			wait()
			if err != nil {
				return err
			}
			fmt.Println(path)
			return nil
		},
	}
	get.Flags().StringVar(&out, "out", ".", "file or directory to write to")
	cmd.AddCommand(get)
	return cmd
}
