// Streaming read bandwidth for bench/run_mlp_roofline.sh: T threads each sum a disjoint share of
// an N-MB float buffer R times (AVX2 loads). Usage: stream_read MB THREADS REPS
#include <immintrin.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
static float* buf; static size_t n; static int T, R;
static double now(){struct timespec t;clock_gettime(CLOCK_MONOTONIC,&t);return t.tv_sec+t.tv_nsec*1e-9;}
static void* work(void* a){ long id=(long)a; size_t lo=n*id/T, hi=n*(id+1)/T; __m256 s0=_mm256_setzero_ps(),s1=s0,s2=s0,s3=s0;
 for(int r=0;r<R;r++) for(size_t i=lo;i+32<=hi;i+=32){ s0=_mm256_add_ps(s0,_mm256_loadu_ps(buf+i)); s1=_mm256_add_ps(s1,_mm256_loadu_ps(buf+i+8)); s2=_mm256_add_ps(s2,_mm256_loadu_ps(buf+i+16)); s3=_mm256_add_ps(s3,_mm256_loadu_ps(buf+i+24)); }
 float o[8]; _mm256_storeu_ps(o,_mm256_add_ps(_mm256_add_ps(s0,s1),_mm256_add_ps(s2,s3))); return (void*)(long)(o[0]>1e30f); }
int main(int c,char**v){ size_t mb=atoi(v[1]); T=atoi(v[2]); R=atoi(v[3]); n=mb<<18; buf=aligned_alloc(64,n*4); for(size_t i=0;i<n;i++)buf[i]=1e-9f*(i&1023);
 pthread_t th[16]; double t0=now(); for(long i=0;i<T;i++)pthread_create(&th[i],0,work,(void*)i); for(int i=0;i<T;i++)pthread_join(th[i],0); double t=now()-t0;
 printf("%zu MB x %d reps, %d threads: %.2f GB/s\n",mb,R,T,(double)mb*R/1024.0*1.073741824/t); return 0; }
