// Raw sockets from C: AF_INET/SOCK_RAW and AF_PACKET must be refused (no CAP_NET_RAW).
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <netinet/in.h>
#include <sys/socket.h>
#include <linux/if_ether.h>

int main() {
    int raw = socket(AF_INET, SOCK_RAW, IPPROTO_ICMP);
    printf("raw %s\n", raw >= 0 ? "opened" : strerror(errno));
    int tcp_raw = socket(AF_INET, SOCK_RAW, IPPROTO_TCP);
    printf("raw_tcp %s\n", tcp_raw >= 0 ? "opened" : strerror(errno));
    int packet = socket(AF_PACKET, SOCK_RAW, htons(ETH_P_ALL));
    printf("packet %s\n", packet >= 0 ? "opened" : strerror(errno));
    return 0;
}
