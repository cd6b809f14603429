package eval

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"

	"gonum.org/v1/gonum/floats"
	"gonum.org/v1/gonum/mat"
	"gonum.org/v1/gonum/optimize"
)

// logistic is a multinomial logistic regression: scores z = W·x + b for K classes, W [K,d]
// row-major, b [K].
type logistic struct {
	K, D int
	W    []float64
	B    []float64

	Iterations int     // L-BFGS major iterations taken
	Status     string  // why the optimiser stopped (gonum's optimize.Status, or its error)
	Objective  float64 // scikit-learn's objective at the solution, C·Σ loss + ½‖W‖²
}

// logregSettings bound one fit.
type logregSettings struct {
	MaxIter int     // L-BFGS major iterations (scikit-learn's max_iter)
	GradTol float64 // stop when the largest gradient entry of the mean-loss objective is below it
}

// defaultLogreg is OpenAI's probe setting (max_iter 1000) with a tolerance tighter than
// scikit-learn's default 1e-4, so that a fit ends at the optimum rather than near it.
var defaultLogreg = logregSettings{MaxIter: 1000, GradTol: 1e-6}

// fitLogistic fits a multinomial logistic regression to the rows of x [n,d] with labels y in
// [0,K) by minimising scikit-learn's objective for LogisticRegression(penalty="l2", C=C,
// multi_class="multinomial", fit_intercept=True):
//
//	C · Σ_i −log softmax(W·x_i + b)[y_i]  +  ½ ‖W‖²   (the intercept b is not penalised)
//
// It minimises that objective divided by C·n — the same minimiser, a gradient whose size does
// not grow with n or C, so that one tolerance fits every point of a sweep — with gonum's L-BFGS
// from zero, as scikit-learn's lbfgs solver starts. The fit stops at settings.MaxIter
// iterations, at the gradient tolerance, or when ctx ends (with ctx's error).
func fitLogistic(ctx context.Context, x *mat.Dense, y []int, K int, C float64, settings logregSettings) (logistic, error) {
	n, d := x.Dims()
	switch {
	case n == 0 || n != len(y):
		return logistic{}, fmt.Errorf("logistic regression: %d feature rows and %d labels", n, len(y))
	case K < 2:
		return logistic{}, fmt.Errorf("logistic regression: %d classes, need at least 2", K)
	case !(C > 0) || math.IsInf(C, 0):
		return logistic{}, fmt.Errorf("logistic regression: C = %v, want a positive finite inverse regularisation strength", C)
	}
	for i, c := range y {
		if c < 0 || c >= K {
			return logistic{}, fmt.Errorf("logistic regression: label %d of row %d outside [0,%d)", c, i, K)
		}
	}
	obj := &logregObjective{x: x, y: y, K: K, d: d, n: n, C: C, z: mat.NewDense(n, K, nil)}
	problem := optimize.Problem{
		Func: func(theta []float64) float64 { obj.eval(theta); return obj.f },
		Grad: func(grad, theta []float64) { obj.eval(theta); copy(grad, obj.grad) },
		Status: func() (optimize.Status, error) {
			if err := ctx.Err(); err != nil {
				return optimize.Failure, err
			}
			return optimize.NotTerminated, nil
		},
	}
	theta0 := make([]float64, K*d+K)
	res, err := optimize.Minimize(problem, theta0,
		&optimize.Settings{GradientThreshold: settings.GradTol, MajorIterations: settings.MaxIter,
			Converger: &optimize.FunctionConverge{Relative: 1e-12, Iterations: 20}},
		&optimize.LBFGS{})
	if ctxErr := ctx.Err(); ctxErr != nil {
		return logistic{}, ctxErr
	}
	status := ""
	switch {
	case res == nil:
		return logistic{}, fmt.Errorf("logistic regression (C=%g): %w", C, err)
	case err != nil:
		// L-BFGS's line search reports a failure when no step lowers the objective any more,
		// which at a tight tolerance happens at the optimum to rounding: the location it
		// reached stands, with the reason recorded.
		if math.IsNaN(res.F) || math.IsInf(res.F, 0) {
			return logistic{}, fmt.Errorf("logistic regression (C=%g): %w", C, err)
		}
		status = err.Error()
	default:
		status = res.Status.String()
	}
	theta := res.X
	m := logistic{K: K, D: d, W: slices.Clone(theta[:K*d]), B: slices.Clone(theta[K*d:]),
		Iterations: res.MajorIterations, Status: status}
	obj.eval(theta)
	m.Objective = obj.f * C * float64(n)
	return m, nil
}

// logregObjective evaluates the scaled objective and its gradient, both at once: gonum asks
// for the value and the gradient at the same point in separate calls, and one pass over the
// data gives both, so the last point is remembered.
type logregObjective struct {
	x       *mat.Dense
	y       []int
	K, d, n int
	C       float64
	z       *mat.Dense // scores, then softmax − onehot, [n,K]

	at   []float64 // the point f and grad are for
	f    float64
	grad []float64
}

func (o *logregObjective) eval(theta []float64) {
	if o.at != nil && floats.Equal(o.at, theta) {
		return
	}
	K, d, n := o.K, o.d, float64(o.n)
	W := mat.NewDense(K, d, theta[:K*d])
	b := theta[K*d:]
	o.z.Mul(o.x, W.T())
	var loss float64
	for i := range o.n {
		row := o.z.RawRowView(i)
		floats.Add(row, b)
		lse := floats.LogSumExp(row)
		loss += lse - row[o.y[i]]
		for k := range row {
			row[k] = math.Exp(row[k] - lse)
		}
		row[o.y[i]]--
	}
	wNorm := floats.Dot(theta[:K*d], theta[:K*d])
	o.f = loss/n + wNorm/(2*o.C*n)
	if o.grad == nil {
		o.grad = make([]float64, len(theta))
	}
	gW := mat.NewDense(K, d, o.grad[:K*d])
	gW.Mul(o.z.T(), o.x) // Σ_i (p_i − e_{y_i}) x_iᵀ
	gW.Scale(1/n, gW)
	floats.AddScaled(o.grad[:K*d], 1/(o.C*n), theta[:K*d])
	gb := o.grad[K*d:]
	clear(gb)
	for i := range o.n {
		floats.Add(gb, o.z.RawRowView(i))
	}
	floats.Scale(1/n, gb)
	o.at = append(o.at[:0], theta...)
}

// scores returns the class scores W·x + b of the rows of x [n,d], [n,K].
func (m logistic) scores(x *mat.Dense) (*mat.Dense, error) {
	_, d := x.Dims()
	if d != m.D {
		return nil, fmt.Errorf("logistic regression: features of width %d, the model takes %d", d, m.D)
	}
	n, _ := x.Dims()
	z := mat.NewDense(n, m.K, nil)
	z.Mul(x, mat.NewDense(m.K, m.D, m.W).T())
	for i := range n {
		floats.Add(z.RawRowView(i), m.B)
	}
	return z, nil
}

// accuracy returns the share of rows of x whose largest score is their label's (the lowest
// class index on ties).
func (m logistic) accuracy(x *mat.Dense, y []int) (float64, error) {
	z, err := m.scores(x)
	if err != nil {
		return 0, err
	}
	if len(y) == 0 {
		return 0, errors.New("logistic regression: accuracy of no rows")
	}
	hits := 0
	for i, c := range y {
		if floats.MaxIdx(z.RawRowView(i)) == c {
			hits++
		}
	}
	return float64(hits) / float64(len(y)), nil
}
