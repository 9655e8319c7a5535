ASCII SPSS PORT FILE                    ASCII SPSS PORT FILE                    
ASCII SPSS PORT FILE                    ASCII SPSS PORT FILE                    
ASCII SPSS PORT FILE                    0000000000000000000000000000000000000000
0000000000000000000000000123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrst
uvwxyz .<(+|&[]!$*);^-/|,%_>?`:$@'="000000~-0000123456789000-()0{}\0000000000000
00000000000000000000000000000000000000000000000000000000SPSSPORTA8/202612066/175
2281E/GNU pspp 1.6.23J/x86_64-pc-linux-gnu62/WT49/5B/70/2/ID5/8/0/5/8/0/70/2/Q15
/8/0/5/8/0/88/89/CJ/Did you answer yes?70/5/SCORE5/9/2/5/9/2/9-1/C7/A score70/5/
HOURS5/4/0/5/4/0/B37/39/CC/Hours worked70/5/TRUST5/2/0/5/2/0/CB/Trust (1-7)70/2/
WT5/9/3/5/9/3/7C/4/NAME1/C/0/1/C/0/73/4/CODE1/3/0/1/3/0/83/DK CD/Code (A/B/DK)7K
/4/NOTE1/K/0/1/K/0/88/NOANSWERCD/A long stringD1/2/Q14/1/3/Yes2/2/No8/A/Don't kn
ow9/7/RefusedD1/5/HOURS1/37/7/RefusedD1/5/TRUST2/1/A/Not at all7/A/CompletelyD1/
4/CODE3/3/A  5/Alpha3/B  4/Beta3/DK A/Don't knowE2/1Q/DOCUMENT Written by make_p
or.sps for the cvsurvey tests.O/   (Entered 06 Dec 2026)F1/1/1.F/1A/1/1.7F/C/ZoÃ
«        3/A  K/a note longer than 82/8/-2.7F/37/2/.F/C/Ana         3/B  K/NOANS
WER            3/*.1713A.F/38/7/2/C/            3/DK K/                    4/2/*
.*.4/1/C/Li Wei      3/A  K/x                   5/9/.3/C/5/3.3MF/C/O'Brien     3
/B  K/Ã†Ã˜Ã…              6/1/-R-3/39/*.1/C/Ana         3/A  K/short            
   ZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZ
