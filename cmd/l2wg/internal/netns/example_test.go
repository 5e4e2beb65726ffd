package netns_test

import (
	"fmt"
	"log"
	"os"

	"github.com/l2wg/l2wg/cmd/l2wg/internal/netns"
)

// A hypervisor with a VM bridge and two VMs on it, a ping between them, and a
// program running on the hypervisor until the lab is closed.
func Example() {
	dir, _ := os.MkdirTemp("", "lab-")
	lab, err := netns.New("", dir)
	if err != nil {
		log.Fatal(err)
	}
	defer lab.Close() // kills what runs in the lab, deletes its namespaces

	must := func(err error) {
		if err != nil {
			log.Fatal(err)
		}
	}
	must(lab.AddNS("hv1"))
	must(lab.Bridge("hv1", "br0"))
	must(lab.AddHost("vm11", "hv1", "br0", "pvm11", "192.168.77.11/24"))
	must(lab.AddHost("vm12", "hv1", "br0", "pvm12", "192.168.77.12/24"))

	out, err := lab.Exec("vm11", "ping", "-c", "1", "192.168.77.12")
	fmt.Printf("%s%v\n", out, err)

	p, err := lab.Start("hv1", "tcpdump", "-ni", "br0")
	must(err)
	defer p.Stop() // SIGTERM, then SIGKILL after p.StopTimeout
}
