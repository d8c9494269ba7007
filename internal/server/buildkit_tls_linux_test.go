package server_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/runtimebuild/runtimebuild/internal/buildkit"
	"github.com/runtimebuild/runtimebuild/internal/dockertest"
	"github.com/runtimebuild/runtimebuild/internal/server"
)

// pki writes a CA, a server certificate for 127.0.0.1 and a client certificate into dir.
func pki(t *testing.T, dir string) {
	t.Helper()
	key := func() *ecdsa.PrivateKey {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	write := func(name, typ string, der []byte) {
		if err := os.WriteFile(filepath.Join(dir, name), pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	caKey := key()
	ca := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "runtimebuild test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, ca, ca, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	write("ca.pem", "CERTIFICATE", caDER)
	for i, leaf := range []struct {
		name  string
		usage x509.ExtKeyUsage
	}{{"server", x509.ExtKeyUsageServerAuth}, {"client", x509.ExtKeyUsageClientAuth}} {
		k := key()
		tmpl := &x509.Certificate{
			SerialNumber: big.NewInt(int64(i + 2)), Subject: pkix.Name{CommonName: leaf.name},
			NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
			KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{leaf.usage},
			IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &k.PublicKey, caKey)
		if err != nil {
			t.Fatal(err)
		}
		kder, _ := x509.MarshalECPrivateKey(k)
		write(leaf.name+".pem", "CERTIFICATE", der)
		write(leaf.name+"-key.pem", "EC PRIVATE KEY", kder)
	}
}

// tlsBuildkitd starts a buildkitd of its own on tcp://127.0.0.1 that requires client
// certificates, and stops it by its process when the test ends.
func tlsBuildkitd(t *testing.T, dir string) string {
	t.Helper()
	bin := dockertest.BuildkitdBinary(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	cmd := exec.Command(bin, "--root", filepath.Join(dir, "state"), "--addr", "tcp://"+addr,
		"--tlscacert", filepath.Join(dir, "ca.pem"), "--tlscert", filepath.Join(dir, "server.pem"), "--tlskey", filepath.Join(dir, "server-key.pem"),
		"--oci-worker-snapshotter", "native", "--containerd-worker=false")
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	if !dockertest.WaitFor(30*time.Second, func() bool {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
		}
		return err == nil
	}) {
		t.Fatalf("the TLS buildkitd did not listen on %s within 30s", addr)
	}
	return "tcp://" + addr
}

func TestTheBuildkitBuilderReachesADaemonOverMutualTLS(t *testing.T) {
	dir := t.TempDir()
	pki(t, dir)
	host := tlsBuildkitd(t, dir)

	// Without a client certificate the daemon refuses: serve says it does not answer.
	c, err := buildkit.Daemon{Host: host, CACert: filepath.Join(dir, "ca.pem")}.Connect(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if err := buildkit.Ping(context.Background(), c); err == nil {
		t.Fatal("a client without a certificate was let in")
	}
	c.Close()

	d := buildkit.Daemon{Host: host, CACert: filepath.Join(dir, "ca.pem"), Cert: filepath.Join(dir, "client.pem"), Key: filepath.Join(dir, "client-key.pem")}
	c, err = d.Connect(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if err := buildkit.Ping(context.Background(), c); err != nil {
		t.Fatalf("with the client certificate: %v", err)
	}
	c.Close()

	reg := inMemoryRegistry(t)
	l := start(t, server.Options{Builder: &server.BuildkitBuilder{Daemon: d}, RegistryPrefix: reg + "/team"})
	image := reg + "/team/tls:1"
	ctx := dockertest.ContextArchive(t, "FROM scratch\nCOPY hello.txt /\n", map[string]string{"hello.txt": "over TLS\n"})
	id, st, err := l.submit(t, ctx, image, "")
	if err != nil || st.Status != "SUCCESS" {
		t.Fatalf("build over TLS: %+v %v\n%s", st, err, l.buildLogs(t, id))
	}
	ref, _ := name.ParseReference(image)
	img, err := remote.Image(ref)
	if err != nil {
		t.Fatal(err)
	}
	if _, body := fileIn(t, img, "hello.txt"); body != "over TLS\n" {
		t.Fatalf("hello.txt holds %q", body)
	}
}
