// A small SSH server on golang.org/x/crypto/ssh with github.com/pkg/sftp, the SSH stack of many
// Go services, for the tests (spec/support/servers/go.ts builds it with Debian's packages):
//
//	server -listen 127.0.0.1:PORT -hostkey FILE -authorized FILE -password PW [-rekey BYTES]
//
// Sessions run exec requests with /bin/sh -c (env requests applied) and the sftp subsystem;
// direct-tcpip channels connect to what they name.
package main

import (
	"bytes"
	"encoding/binary"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"os"
	"os/exec"
	"syscall"

	"github.com/pkg/sftp"
	"golang.org/x/crypto/ssh"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:0", "address")
	hostKeyFile := flag.String("hostkey", "", "host key (OpenSSH format)")
	authorized := flag.String("authorized", "", "authorized_keys file")
	password := flag.String("password", "", "accepted password")
	rekey := flag.Uint64("rekey", 0, "bytes after which the server starts a new key exchange (0: x/crypto's default)")
	flag.Parse()
	keyBytes, err := os.ReadFile(*hostKeyFile)
	if err != nil {
		log.Fatal(err)
	}
	signer, err := ssh.ParsePrivateKey(keyBytes)
	if err != nil {
		log.Fatal(err)
	}
	config := &ssh.ServerConfig{
		PasswordCallback: func(c ssh.ConnMetadata, pw []byte) (*ssh.Permissions, error) {
			if *password != "" && string(pw) == *password {
				return nil, nil
			}
			return nil, fmt.Errorf("password rejected for %q", c.User())
		},
		PublicKeyCallback: func(c ssh.ConnMetadata, key ssh.PublicKey) (*ssh.Permissions, error) {
			if isAuthorized(*authorized, key) {
				return nil, nil
			}
			return nil, fmt.Errorf("unknown public key for %q", c.User())
		},
	}
	config.RekeyThreshold = *rekey
	config.AddHostKey(signer)
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("READY %d\n", ln.Addr().(*net.TCPAddr).Port)
	for {
		conn, err := ln.Accept()
		if err != nil {
			log.Fatal(err)
		}
		go serve(conn, config)
	}
}

// isAuthorized reads the authorized_keys file at each login, as sshd does.
func isAuthorized(path string, key ssh.PublicKey) bool {
	data, err := os.ReadFile(path)
	if err != nil {
		return false
	}
	for len(data) > 0 {
		pub, _, _, rest, err := ssh.ParseAuthorizedKey(data)
		if err != nil {
			return false
		}
		if bytes.Equal(pub.Marshal(), key.Marshal()) {
			return true
		}
		data = rest
	}
	return false
}

func serve(conn net.Conn, config *ssh.ServerConfig) {
	sc, chans, reqs, err := ssh.NewServerConn(conn, config)
	if err != nil {
		log.Printf("handshake: %v", err)
		return
	}
	log.Printf("login %s (%s)", sc.User(), sc.ClientVersion())
	go ssh.DiscardRequests(reqs)
	for nc := range chans {
		if nc.ChannelType() == "direct-tcpip" {
			go forward(nc)
			continue
		}
		if nc.ChannelType() != "session" {
			nc.Reject(ssh.UnknownChannelType, "only sessions and direct-tcpip")
			continue
		}
		ch, requests, err := nc.Accept()
		if err != nil {
			continue
		}
		go session(ch, requests)
	}
}

// forward connects a direct-tcpip channel to the address it names, both ways, each half closed
// when its side ends.
func forward(nc ssh.NewChannel) {
	var dest struct {
		Host     string
		Port     uint32
		OrigHost string
		OrigPort uint32
	}
	if err := ssh.Unmarshal(nc.ExtraData(), &dest); err != nil {
		nc.Reject(ssh.ConnectionFailed, "bad direct-tcpip request")
		return
	}
	conn, err := net.Dial("tcp", net.JoinHostPort(dest.Host, fmt.Sprint(dest.Port)))
	if err != nil {
		nc.Reject(ssh.ConnectionFailed, err.Error())
		return
	}
	ch, reqs, err := nc.Accept()
	if err != nil {
		conn.Close()
		return
	}
	go ssh.DiscardRequests(reqs)
	done := make(chan struct{})
	go func() {
		io.Copy(conn, ch)
		conn.(*net.TCPConn).CloseWrite()
		close(done)
	}()
	io.Copy(ch, conn)
	ch.CloseWrite()
	<-done
	ch.Close()
	conn.Close()
}

func exitStatus(ch ssh.Channel, code uint32) {
	b := make([]byte, 4)
	binary.BigEndian.PutUint32(b, code)
	ch.SendRequest("exit-status", false, b)
}

func session(ch ssh.Channel, requests <-chan *ssh.Request) {
	defer ch.Close()
	env := os.Environ()
	for req := range requests {
		switch req.Type {
		case "env":
			var kv struct{ Name, Value string }
			if ssh.Unmarshal(req.Payload, &kv) == nil {
				env = append(env, kv.Name+"="+kv.Value)
			}
			req.Reply(true, nil)
		case "exec":
			var cmd struct{ Command string }
			if err := ssh.Unmarshal(req.Payload, &cmd); err != nil {
				req.Reply(false, nil)
				return
			}
			req.Reply(true, nil)
			c := exec.Command("/bin/sh", "-c", cmd.Command)
			c.Env = env
			c.Stdout = ch
			c.Stderr = ch.Stderr()
			stdin, _ := c.StdinPipe()
			go func() {
				io.Copy(stdin, ch)
				stdin.Close()
			}()
			code := uint32(0)
			if err := c.Run(); err != nil {
				if ee, ok := err.(*exec.ExitError); ok {
					code = uint32(ee.Sys().(syscall.WaitStatus).ExitStatus())
				} else {
					code = 127
				}
			}
			ch.CloseWrite()
			exitStatus(ch, code)
			return
		case "subsystem":
			var sub struct{ Name string }
			if ssh.Unmarshal(req.Payload, &sub) != nil || sub.Name != "sftp" {
				req.Reply(false, nil)
				continue
			}
			req.Reply(true, nil)
			srv, err := sftp.NewServer(ch)
			if err != nil {
				return
			}
			srv.Serve()
			exitStatus(ch, 0)
			return
		default:
			req.Reply(false, nil)
		}
	}
}
