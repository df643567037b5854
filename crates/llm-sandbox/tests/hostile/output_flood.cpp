// Output flood: 4 GiB on stdout, 1 MiB at a time.
#include <cstring>
#include <unistd.h>

static char block[1 << 20];

int main() {
    memset(block, 'x', sizeof block);
    for (int i = 0; i < 4096; i++) {
        size_t done = 0;
        while (done < sizeof block) {
            ssize_t n = write(1, block + done, sizeof block - done);
            if (n <= 0) {
                return 1;
            }
            done += n;
        }
    }
    return 0;
}
