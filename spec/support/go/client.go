// A small SSH client on golang.org/x/crypto/ssh with github.com/pkg/sftp, for the tests
// (spec/support/servers/go.ts builds it with Debian's packages):
//
//	client -addr 127.0.0.1:PORT -user U (-password PW | -key FILE) -hostkey "ssh-ed25519 AAAA..." exec CMD
//	client ... sftp-roundtrip LOCAL REMOTE   (put LOCAL as REMOTE, read it back: prints size and sha256)
//	client ... dial HOST:PORT                 (a direct-tcpip channel: stdin to it, what comes back to stdout)
//
// exec passes stdin, stdout and stderr through and exits with the command's status.
package main

import (
	"bytes"
	"crypto/sha256"
	"flag"
	"fmt"
	"io"
	"log"
	"os"

	"github.com/pkg/sftp"
	"golang.org/x/crypto/ssh"
)

func main() {
	addr := flag.String("addr", "", "host:port")
	user := flag.String("user", "", "user")
	password := flag.String("password", "", "password")
	keyFile := flag.String("key", "", "private key")
	hostKey := flag.String("hostkey", "", "the server's public key line")
	flag.Parse()
	var auth []ssh.AuthMethod
	if *keyFile != "" {
		b, err := os.ReadFile(*keyFile)
		if err != nil {
			log.Fatal(err)
		}
		s, err := ssh.ParsePrivateKey(b)
		if err != nil {
			log.Fatal(err)
		}
		auth = append(auth, ssh.PublicKeys(s))
	}
	if *password != "" {
		auth = append(auth, ssh.Password(*password))
	}
	want, _, _, _, err := ssh.ParseAuthorizedKey([]byte(*hostKey))
	if err != nil {
		log.Fatal(err)
	}
	client, err := ssh.Dial("tcp", *addr, &ssh.ClientConfig{User: *user, Auth: auth, HostKeyCallback: ssh.FixedHostKey(want), HostKeyAlgorithms: []string{want.Type()}})
	if err != nil {
		log.Fatal(err)
	}
	defer client.Close()
	args := flag.Args()
	switch args[0] {
	case "exec":
		s, err := client.NewSession()
		if err != nil {
			log.Fatal(err)
		}
		s.Stdin = os.Stdin
		s.Stdout = os.Stdout
		s.Stderr = os.Stderr
		if err := s.Run(args[1]); err != nil {
			if ee, ok := err.(*ssh.ExitError); ok {
				os.Exit(ee.ExitStatus())
			}
			log.Fatal(err)
		}
	case "dial":
		conn, err := client.Dial("tcp", args[1])
		if err != nil {
			log.Fatal(err)
		}
		go func() {
			io.Copy(conn, os.Stdin)
			conn.(interface{ CloseWrite() error }).CloseWrite()
		}()
		io.Copy(os.Stdout, conn)
	case "sftp-roundtrip":
		c, err := sftp.NewClient(client)
		if err != nil {
			log.Fatal(err)
		}
		defer c.Close()
		data, err := os.ReadFile(args[1])
		if err != nil {
			log.Fatal(err)
		}
		f, err := c.Create(args[2])
		if err != nil {
			log.Fatal(err)
		}
		if _, err := io.Copy(f, bytes.NewReader(data)); err != nil {
			log.Fatal(err)
		}
		f.Close()
		g, err := c.Open(args[2])
		if err != nil {
			log.Fatal(err)
		}
		h := sha256.New()
		n, err := g.WriteTo(h)
		if err != nil {
			log.Fatal(err)
		}
		g.Close()
		fmt.Printf("%d %x\n", n, h.Sum(nil))
	default:
		log.Fatalf("unknown command %q", args[0])
	}
}
