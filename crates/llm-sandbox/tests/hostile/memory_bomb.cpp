// Memory bomb in several processes: four children each allocate and touch up to 1 GiB.
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <sys/wait.h>
#include <unistd.h>

int main() {
    for (int i = 0; i < 4; i++) {
        if (fork() == 0) {
            for (int mib = 0; mib < 1024; mib++) {
                char *block = static_cast<char *>(malloc(1 << 20));
                if (block == nullptr) {
                    fprintf(stderr, "malloc failed after %d MiB\n", mib);
                    _exit(3);
                }
                memset(block, 'x', 1 << 20);
            }
            printf("survived\n");
            fflush(stdout);
            _exit(0);
        }
    }
    int failed = 0;
    int status;
    while (wait(&status) > 0) {
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
            failed++;
        }
    }
    return failed == 0 ? 0 : 2;
}
