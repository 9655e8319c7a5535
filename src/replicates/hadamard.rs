//! Hadamard matrices as R `survey`'s `hadamard(n)` builds them (0/1 coding, first row and
//! column all 1): the smallest of R's stored matrices (orders 4, 16, 28, 36), Sylvester doubling
//! (`hadamard.doubler`: `[H H; H 1−H]`) or a Paley construction from a prime p ≡ 3 (mod 4)
//! (`paley`). The same `n` gives the same matrix as R, so BRR and Fay replicates are R's.
//! Tested against `survey:::hadamard(n)` for n = 1..120 (`fixtures/replicates/hadamard.csv`).

/// A square 0/1 matrix stored row-major.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hadamard {
    /// Order (rows = columns).
    pub order: usize,
    /// Entries, row-major, each 0 or 1.
    pub data: Vec<u8>,
}

impl Hadamard {
    /// Entry at row `i`, column `j` (0-based).
    pub fn get(&self, i: usize, j: usize) -> u8 {
        self.data[i * self.order + j]
    }

    fn from_rows(rows: &[&str]) -> Hadamard {
        let order = rows.len();
        let data = rows
            .iter()
            .flat_map(|r| r.bytes().map(|b| u8::from(b == b'1')))
            .collect();
        Hadamard { order, data }
    }

    /// Sylvester doubling `[H H; H 1−H]` (R `hadamard.doubler`).
    fn doubled(&self) -> Hadamard {
        let n = self.order;
        let m = 2 * n;
        let mut data = vec![0u8; m * m];
        for i in 0..m {
            for j in 0..m {
                let v = self.get(i % n, j % n);
                data[i * m + j] = if i >= n && j >= n { 1 - v } else { v };
            }
        }
        Hadamard { order: m, data }
    }

    /// True if any two distinct rows agree in exactly half of the columns.
    pub fn is_hadamard(&self) -> bool {
        let n = self.order;
        (0..n).all(|a| {
            (a + 1..n).all(|b| {
                let agree = (0..n).filter(|&j| self.get(a, j) == self.get(b, j)).count();
                2 * agree == n
            })
        })
    }
}

/// R's stored orders (`survey:::hadamard.sizes`).
const SIZES: [usize; 4] = [4, 16, 28, 36];

fn sylvester(order: usize) -> Hadamard {
    let mut h = Hadamard {
        order: 1,
        data: vec![1],
    };
    while h.order < order {
        h = h.doubled();
    }
    h
}

/// R's stored matrix number `k` (0-based) of `hadamard.list`.
fn stored(k: usize) -> Hadamard {
    match k {
        0 => sylvester(4),
        1 => sylvester(16),
        2 => Hadamard::from_rows(&H28),
        _ => Hadamard::from_rows(&H36),
    }
}

/// Primes p ≡ 3 (mod 4) that R's `paley()` knows (`small.primes`, up to 7919).
fn small_primes() -> Vec<usize> {
    (3..=7919usize)
        .filter(|&p| p % 4 == 3 && (2..).take_while(|d| d * d <= p).all(|d| p % d != 0))
        .collect()
}

/// Paley construction of order p + 1 from a prime p ≡ 3 (mod 4): entry (i, j) of the core is 0
/// when (i + j) mod p is 0 or a quadratic residue, else 1; bordered by a row and column of 1.
fn paley_prime(p: usize) -> Hadamard {
    let mut residue = vec![false; p];
    residue[0] = true;
    residue[1] = true;
    for i in 2..=(p - 1) / 2 {
        residue[(i * i) % p] = true;
    }
    let m = p + 1;
    let mut data = vec![1u8; m * m];
    for i in 0..p {
        for j in 0..p {
            data[(i + 1) * m + j + 1] = u8::from(!residue[(i + j) % p]);
        }
    }
    Hadamard { order: m, data }
}

/// R's `paley(n, nmax)` (without a given prime): `None` where R returns `NULL`.
fn paley(n: usize, nmax: usize, primes: &[usize]) -> Option<Hadamard> {
    let nceil = n + 4 - (n % 4);
    if (n % 4) + 4 == n % 8 {
        let mut nn = nceil;
        while nn.is_multiple_of(8) {
            nn /= 2;
        }
        if nn >= 1 && primes.contains(&(nn - 1)) {
            let mut m = paley_prime(nn - 1);
            while nn < nceil {
                m = m.doubled();
                nn *= 2;
            }
            return Some(m);
        }
    }
    let largest = *primes.last()?;
    if n > largest {
        return None;
    }
    let p = *primes.iter().find(|&&p| p >= n)?;
    if p + 1 > nceil + 4 && nceil + 4 < nmax {
        // R recurses with n = nceil + 3 and its default nmax = 2n.
        return paley(nceil + 3, 2 * (nceil + 3), primes);
    }
    if p > nmax {
        return None;
    }
    Some(paley_prime(p))
}

/// R's `hadamard(n)`: a Hadamard matrix of order > n (at least n + 1 rows), the one R uses for
/// BRR with n strata (`brrweights` takes its rows 2..n+1 and all its columns as replicates).
pub fn hadamard(n: usize) -> Hadamard {
    let m = n - n % 4;
    if let Some(k) = (0..SIZES.len()).find(|&k| m < SIZES[k] && m + 4 >= SIZES[k]) {
        return stored(k);
    }
    if SIZES.iter().all(|&s| m < s) {
        return stored(0);
    }
    // sizes * 2^max(0, ceiling(log2((n + 1) / sizes)))
    let sizes: Vec<usize> = SIZES
        .iter()
        .map(|&s| {
            let mut v = s;
            while v < n + 1 {
                v *= 2;
            }
            v
        })
        .collect();
    let mut best = 0;
    for k in 1..sizes.len() {
        if sizes[k] - n < sizes[best] - n {
            best = k;
        }
    }
    if sizes[best] - n > 4
        && let Some(h) = paley(n, sizes[best], &small_primes())
    {
        return h;
    }
    let mut h = stored(best);
    while h.order < sizes[best] {
        h = h.doubled();
    }
    h
}

#[rustfmt::skip]
const H28: [&str; 28] = [
    "1111111111111111111111111111",
    "1001110001110001110001111000",
    "1000001111001101001101111000",
    "1000001110110010111001100110",
    "1001101000001111100011010110",
    "1001010100101100010110101110",
    "1000110011010010001110011110",
    "0101100010101010011111110000",
    "0100010110110101100111010100",
    "0100011011001011110010101100",
    "0101011000010111011101001010",
    "0100101101100100111010011010",
    "0101100101011001101100100110",
    "0010110100011110101011101000",
    "0011011001100110101100110100",
    "0010101100111011010100011100",
    "0011000111010111010010110010",
    "0011001011111000100111001010",
    "0010110011101101011001000110",
    "1110101001010100010111100100",
    "1111000101100011001011001100",
    "1111000010011100111000011100",
    "1110010101001010110101010010",
    "1110011000111001001010110010",
    "1110100010100111100100101010",
    "1101111111111110000000000000",
    "1011111110000001111110000000",
    "0111111110000000000001111110",
];

#[rustfmt::skip]
const H36: [&str; 36] = [
    "111111111111111111111111111111111111",
    "010111000111110111001000010101100100",
    "101110001111101110010000101011001000",
    "011100011111011100100001010110010010",
    "111000111110111001000010101100100100",
    "110001111101110010000101011001001010",
    "100011111011100100001010110010010110",
    "000111110111001000010101100100101110",
    "001111101110010000101011001001011100",
    "011111011100100001010110010010111000",
    "111110111001000010101100100101110000",
    "111101110010000101011001001011100010",
    "111011100100001010110010010111000110",
    "110111001000010101100100101110001110",
    "101110010000101011001001011100011110",
    "011100100001010110010010111000111110",
    "111001000010101100100101110001111100",
    "110010000101011001001011100011111010",
    "100100001010110010010111000111110110",
    "001000010101100100101110001111101110",
    "010000101011001001011100011111011100",
    "100001010110010010111000111110111000",
    "000010101100100101110001111101110010",
    "000101011001001011100011111011100100",
    "001010110010010111000111110111001000",
    "010101100100101110001111101110010000",
    "101011001001011100011111011100100000",
    "010110010010111000111110111001000010",
    "101100100101110001111101110010000100",
    "011001001011100011111011100100001010",
    "110010010111000111110111001000010100",
    "100100101110001111101110010000101010",
    "001001011100011111011100100001010110",
    "010010111000111110111001000010101100",
    "100101110001111101110010000101011000",
    "001011100011111011100100001010110010",
];
